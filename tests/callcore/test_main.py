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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # pike counts in 16 bits: 65536 would become 0 and ban every source, 10000000 would become 38528.
        ("SS_FLOOD_REQUESTS_PER_2S", "0"),
        ("SS_FLOOD_REQUESTS_PER_2S", "65536"),
        ("SS_FLOOD_REQUESTS_PER_2S", "10000000"),
        ("SS_FLOOD_REQUESTS_PER_2S", "many"),
        ("SS_FLOOD_BAN_SECONDS", "0"),  # an htable entry with autoexpire 0 never expires
        ("SS_FLOOD_BAN_SECONDS", "5m"),
        ("SS_SIP_PORT", "70000"),
        ("SS_SIP_PORT", "sip"),
        ("SS_CHILDREN", "0"),
        ("SS_TCP_CHILDREN", "-1"),
        ("SS_DEFAULT_INVITE_TIMEOUT", "0"),
        ("SS_DEFAULT_INVITE_TIMEOUT", "2.5"),
        ("SS_DIALOG_KEEPALIVE_FAILURES", "0"),
        ("SS_DIALOG_KEEPALIVE_SECONDS", "soon"),
        ("SS_DIALOG_KEEPALIVE_SECONDS", "10"),  # Kamailio's least is 30
        ("SS_DEFAULT_MAX_DURATION", "0"),
        ("SS_DEFAULT_MAX_DURATION", "2h"),
        ("SS_RING_TIMEOUT_SECONDS", "x"),
        ("SS_SNAPSHOT_POLL_SECONDS", "-1"),
        ("SS_SNAPSHOT_POLL_SECONDS", "nan"),
    ],
)
def test_a_setting_kamailio_cannot_take_is_refused_with_its_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        main.settings_from_env()


def test_numeric_settings_reach_kamailio_as_given(monkeypatch):
    for name, value in [("SS_FLOOD_BAN_SECONDS", "60"), ("SS_DEFAULT_INVITE_TIMEOUT", "12"), ("SS_CHILDREN", "6")]:
        monkeypatch.setenv(name, value)
    config = main.render(main.settings_from_env())
    assert "autoexpire=60;" in config
    assert 'modparam("tm", "fr_inv_timer", 12000)' in config
    assert "children=6" in config


def test_in_dialog_offers_and_answers_take_the_first_offer_s_flags(monkeypatch):
    # One definition of the SDP rewrite (callcore/media.py) for kemi.py's first offer and answer and for the
    # configuration's re-INVITEs: a flag added there reaches both.
    monkeypatch.setattr(main.media, "OFFER_FLAGS", "replace-origin trust-address")
    monkeypatch.setattr(main.media, "ANSWER_FLAGS", "replace-origin symmetric")
    config = main.render(main.settings_from_env())
    in_dialog = config[config.index("route[IN_DIALOG_MEDIA]") :]
    assert in_dialog.count('rtpengine_offer("replace-origin trust-address")') == 4  # each tried twice
    assert in_dialog.count('rtpengine_answer("replace-origin symmetric")') == 4
    assert "rtpengine_offer()" not in config and "rtpengine_answer()" not in config
