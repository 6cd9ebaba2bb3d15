"""The SIP floor of bench/callcore_cps.py --floor stays callcore's configuration with no Python in it."""

import importlib.util
import shutil
import subprocess

import pytest

from callcore.__main__ import HERE, ROOT, kamailio_binary, settings_from_env

spec = importlib.util.spec_from_file_location("bench_floor", ROOT / "bench" / "floor.py")
floor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(floor)


@pytest.fixture
def values(tmp_path):
    values = settings_from_env()
    values.update(run_dir=str(tmp_path / "run"), state_dir=str(tmp_path), keepalive_seconds=0, keepalive_step=0)
    return values


def test_every_python_call_of_the_template_has_a_native_stand_in(values):
    text = floor.floor_config(values, 16070)
    template = (HERE / "kamailio.cfg.tmpl").read_text()
    # + the two broken-message routes, less the metrics timer's, which the template gets from {{metrics_routes}}
    assert template.count("python_exec(") == len(floor.FLOOR_ROUTES) + 2 - 1
    assert "python_exec" not in text
    assert "app_python3" not in text
    assert "route(FLOOR_INITIAL);" in text
    assert "sip:127.0.0.1:16070;transport=udp" in text
    # The SIP duties under measurement are callcore's own, untouched.
    for duty in ('loadmodule "topoh.so"', "pike_check_req()", "route[IN_DIALOG]", 'modparam("uac"'):
        assert duty in text


def test_a_template_call_the_floor_does_not_know_stops_it(values, monkeypatch):
    monkeypatch.setitem(floor.FLOOR_ROUTES, 'python_exec("ksr_no_such_route");', "")
    with pytest.raises(RuntimeError, match="ksr_no_such_route"):
        floor.floor_config(values, 16070)


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="Kamailio is not installed")
def test_kamailio_accepts_the_floor(values, tmp_path):
    cfg = tmp_path / "floor.cfg"
    cfg.write_text(floor.floor_config(values, 16070))
    result = subprocess.run([kamailio_binary(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
