"""Registered phones in the live state: what a REGISTER's contacts ask for, and the Lua that records them."""

from __future__ import annotations

import pytest

from callcore.contract import Registration, decode_registration, encode_registration, registration_field
from callcore.sipsyntax import register_contacts

NOW = 1_900_000_000_000
BOUNDS = {"default_s": 3600, "min_s": 60, "max_s": 3600}


@pytest.mark.parametrize(
    ("contact", "expires", "answer"),
    [
        ("<sip:1001@10.0.0.5:5062>", "", (False, [("sip:1001@10.0.0.5:5062", 3600)])),
        ("<sip:1001@10.0.0.5:5062>", "300", (False, [("sip:1001@10.0.0.5:5062", 300)])),
        # the contact's own expires wins over the header; too short is raised to the registrar's minimum
        ("<sip:1001@h;transport=tcp>;expires=10", "300", (False, [("sip:1001@h;transport=tcp", 60)])),
        ("<sip:1001@h>;expires=99999", "", (False, [("sip:1001@h", 3600)])),
        ("sip:1001@h;expires=0", "", (False, [("sip:1001@h", 0)])),
        ('"Desk, left" <sip:a@h>;q=0.5, <sip:b@h>;expires=120', "", (False, [("sip:a@h", 3600), ("sip:b@h", 120)])),
        ("*", "0", (True, [])),
    ],
)
def test_a_register_asks_for_each_contact_what_the_registrar_keeps(contact, expires, answer):
    assert register_contacts(contact, expires, **BOUNDS) == answer


def registration(contact="sip:1001@10.0.0.5", *, node="n1", aor="1001", expires_ms=NOW + 60_000):
    return Registration(
        aor=aor, contact=contact, source_ip="10.0.0.5", source_port=5062, transport="udp", user_agent="desk",
        registered_ms=NOW, expires_ms=expires_ms, node=node, phone_id=7,
    )  # fmt: skip


def row(reg):
    return registration_field(reg.node, reg.aor, reg.contact), reg.expires_ms, encode_registration(reg)


def stored(client, prefix):
    from callcore.contract import Keys

    return {k.decode(): decode_registration(v) for k, v in client.hgetall(Keys(prefix).registrations).items()}


def test_a_saved_contact_is_recorded_with_its_expiry_and_a_removed_one_goes(live, client, prefix):
    desk = registration()
    live.record_registrations(NOW, "", [row(desk)])
    assert stored(client, prefix) == {"n1|1001|sip:1001@10.0.0.5": desk}
    assert client.zscore(live.keys.registrations_expiry, "n1|1001|sip:1001@10.0.0.5") == NOW + 60_000
    live.record_registrations(NOW + 1000, "", [row(registration(expires_ms=0))])
    assert stored(client, prefix) == {}
    assert client.zcard(live.keys.registrations_expiry) == 0


def test_expired_contacts_of_any_node_go_at_the_next_register(live, client, prefix):
    live.record_registrations(NOW, "", [row(registration(node="n2", expires_ms=NOW + 1000))])
    fresh = registration(contact="sip:1002@h", aor="1002", expires_ms=NOW + 120_000)
    assert live.record_registrations(NOW + 5000, "", [row(fresh)]) == 1
    assert list(stored(client, prefix)) == ["n1|1002|sip:1002@h"]


def test_a_wildcard_unregister_drops_every_contact_of_the_phone_on_its_node_only(live, client, prefix):
    rows = [row(registration(contact=c, node=n)) for c in ("sip:a@h", "sip:b@h") for n in ("n1", "n2")]
    rows.append(row(registration(contact="sip:c@h", aor="10010")))  # a username the prefix must not catch
    live.record_registrations(NOW, "", rows)
    live.record_registrations(NOW + 1000, registration_field("n1", "1001", ""), [])
    assert sorted(stored(client, prefix)) == ["n1|10010|sip:c@h", "n2|1001|sip:a@h", "n2|1001|sip:b@h"]
