"""`python -m callcore`'s settings: Kamailio's shared memory, the flood limit."""

import pytest

from callcore import __main__ as main

MB = 2**20


def machine_of(monkeypatch, megabytes):
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": megabytes * MB // 4096}
    monkeypatch.setattr(main.os, "sysconf", lambda name: pages[name])


@pytest.mark.parametrize(
    ("machine_mb", "expected"),
    [(1024, 512), (3 * 1024, 768), (8 * 1024, 2048), (64 * 1024, 4096)],
)
def test_by_default_a_quarter_of_the_machine_within_bounds(monkeypatch, machine_mb, expected):
    monkeypatch.delenv("SS_SHM_MB", raising=False)
    machine_of(monkeypatch, machine_mb)
    assert main.shm_mb() == expected


def test_the_operator_s_figure_wins(monkeypatch):
    machine_of(monkeypatch, 64 * 1024)
    monkeypatch.setenv("SS_SHM_MB", "640")
    assert main.shm_mb() == 640
    assert main.settings_from_env()["shm_mb"] == 640


@pytest.mark.parametrize("value", ["lots", "-1", "1.5", "32"])
def test_a_bad_figure_is_refused_with_its_name(monkeypatch, value):
    monkeypatch.setenv("SS_SHM_MB", value)
    with pytest.raises(SystemExit, match="SS_SHM_MB"):
        main.shm_mb()


def test_the_flood_limit_reaches_kamailio_as_given(monkeypatch):
    monkeypatch.setenv("SS_FLOOD_REQUESTS_PER_2S", "65535")
    assert 'modparam("pike", "reqs_density_per_unit", 65535)' in main.render(main.settings_from_env())


@pytest.mark.parametrize("value", ["0", "65536", "10000000", "-5", "many"])
def test_a_flood_limit_pike_cannot_hold_is_refused_with_its_name(monkeypatch, value):
    # pike counts in 16 bits: 65536 would become 0 and ban every source, 10000000 would become 38528.
    monkeypatch.setenv("SS_FLOOD_REQUESTS_PER_2S", value)
    with pytest.raises(SystemExit, match="SS_FLOOD_REQUESTS_PER_2S"):
        main.settings_from_env()
