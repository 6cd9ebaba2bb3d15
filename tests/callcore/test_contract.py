"""The snapshot schema: encoding round trip and a decoder that refuses anything off-schema."""

import json
import zlib

import msgspec
import pytest

from callcore import contract


def blob_of(data):
    return zlib.compress(json.dumps(data).encode())


def tampered(snapshot, change):
    data = json.loads(json.dumps(contract.snapshot_to_dict(snapshot)))
    change(data)
    return blob_of(data)


def test_it_round_trips_every_field(sample_snapshot):
    blob = contract.encode_snapshot(sample_snapshot)

    assert contract.decode_snapshot(blob) == sample_snapshot
    assert isinstance(contract.decode_snapshot(blob).routing_gateways[0].prefixes, tuple)


def test_the_blob_is_compressed_json(sample_snapshot):
    blob = contract.encode_snapshot(sample_snapshot)

    data = json.loads(zlib.decompress(blob))

    assert data["schema_version"] == contract.SNAPSHOT_SCHEMA_VERSION
    assert data["routing_gateways"][0]["caller_number_pool"]["numbers"] == ["4420", "4421"]
    assert data["rate_tables"][0]["rates"][1]["price_per_minute"] == "0.0200"


def test_it_refuses_another_schema_version(sample_snapshot):
    def bump(data):
        data["schema_version"] = contract.SNAPSHOT_SCHEMA_VERSION + 1

    with pytest.raises(contract.SnapshotError, match="schema version"):
        contract.decode_snapshot(tampered(sample_snapshot, bump))


@pytest.mark.parametrize(
    "blob",
    [b"", b"garbage that is not zlib", b"x\x9c\x01\x02"],
    ids=["empty", "garbage", "zlib header only"],
)
def test_it_refuses_what_is_not_zlib(blob):
    with pytest.raises(contract.SnapshotError, match="zlib"):
        contract.decode_snapshot(blob)


def test_it_refuses_a_truncated_blob(sample_snapshot):
    blob = contract.encode_snapshot(sample_snapshot)

    with pytest.raises(contract.SnapshotError, match="zlib"):
        contract.decode_snapshot(blob[: len(blob) // 2])


def test_it_refuses_compressed_text_that_is_not_json():
    with pytest.raises(contract.SnapshotError, match="JSON"):
        contract.decode_snapshot(zlib.compress(b"{not json"))


def test_it_refuses_json_that_is_not_an_object():
    with pytest.raises(contract.SnapshotError, match="expected an object"):
        contract.decode_snapshot(blob_of([1, 2, 3]))


def test_it_names_a_missing_key_and_where(sample_snapshot):
    def drop_host(data):
        del data["routing_gateways"][1]["host"]

    with pytest.raises(contract.SnapshotError, match=r"routing_gateways\[1\].*missing required key 'host'"):
        contract.decode_snapshot(tampered(sample_snapshot, drop_host))


def test_it_refuses_a_missing_collection(sample_snapshot):
    def drop_phones(data):
        del data["phones"]

    with pytest.raises(contract.SnapshotError, match="'phones'"):
        contract.decode_snapshot(tampered(sample_snapshot, drop_phones))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("routing_gateways", 0, "port"), "5060", r"routing_gateways\[0\]\.port: expected an integer"),
        (("mapping_gateways", 0, "capacity"), True, r"mapping_gateways\[0\]\.capacity: expected an integer"),
        (("mapping_gateways", 0, "enabled"), 1, r"mapping_gateways\[0\]\.enabled: expected true or false"),
        (("accounts", 0, "balance"), 12.34, r"accounts\[0\]\.balance: expected a decimal string"),
        (("accounts", 0, "balance"), "twelve", r"accounts\[0\]\.balance: expected a decimal string"),
        (("accounts", 0, "balance"), "NaN", r"accounts\[0\]\.balance: expected a decimal string"),
        (("mapping_gateways", 0, "auth_mode"), "password", r"auth_mode: expected one of ip, ip_port"),
        (("list_groups", 0, "numbers"), ["441", 442], r"list_groups\[0\]\.numbers\[1\]: expected a string"),
        (("list_groups", 0, "numbers"), "441", r"list_groups\[0\]\.numbers: expected a list"),
        (("routing_gateways", 0, "caller_number_pool"), "pool", r"caller_number_pool: expected an object"),
        (("rate_tables", 0, "rates", 2, "valid_from_ms"), "2030", r"rates\[2\]\.valid_from_ms: expected an integer"),
        (("parameters", "SS_MAX_CPS"), "10", r"parameters\['SS_MAX_CPS'\]: expected an integer or true/false"),
    ],
)
def test_it_refuses_a_value_of_the_wrong_type(sample_snapshot, path, value, message):
    def set_value(data):
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    with pytest.raises(contract.SnapshotError, match=message):
        contract.decode_snapshot(tampered(sample_snapshot, set_value))


def test_it_refuses_unknown_keys(sample_snapshot):
    def add_key(data):
        data["phones"][0]["password"] = "s3cret-pass"

    with pytest.raises(contract.SnapshotError, match=r"phones\[0\].*unknown keys \['password'\]"):
        contract.decode_snapshot(tampered(sample_snapshot, add_key))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"SS_MAX_CPS": None}, "SS_MAX_CPS is missing"),
        ({"SS_SIP_STOP_SWITCH_AFTER_SDP": 1}, "SS_SIP_STOP_SWITCH_AFTER_SDP must be bool"),
        ({"SS_MAX_CPS": True}, "SS_MAX_CPS must be int"),
        ({"SERVER_BILLING_FEE_PRECISION": 9}, "at most 4"),
        ({"NOT_A_PARAMETER": 1}, r"unknown names \['NOT_A_PARAMETER'\]"),
    ],
)
def test_it_refuses_parameters_that_are_not_the_declared_ones(sample_snapshot, parameters, message):
    values = dict(sample_snapshot.parameters)
    for name, value in parameters.items():
        if value is None:
            del values[name]
        else:
            values[name] = value
    snapshot = msgspec.structs.replace(sample_snapshot, parameters=values)

    with pytest.raises(contract.SnapshotError, match=message):
        contract.decode_snapshot(contract.encode_snapshot(snapshot))


def test_every_declared_parameter_is_in_a_decoded_snapshot(sample_snapshot):
    decoded = contract.decode_snapshot(contract.encode_snapshot(sample_snapshot))

    assert set(decoded.parameters) == {p.name for p in contract.PARAMETERS}
    assert decoded.parameters["SS_GATEWAY_SWITCH_LIMIT"] == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["mapping_gateways"][0].update(account_id=99), r"account 99 is not in the snapshot"),
        (lambda d: d["mapping_gateways"][0].update(callee_list_group_ids=[77]), r"list group 77"),
        (lambda d: d["routing_gateways"][3].update(schedule_ids=[5]), r"routing schedule 5"),
        (lambda d: d["accounts"][0].update(rate_table_id=8), r"rate table 8"),
        (lambda d: d["mapping_gateways"][1].update(remote_ips=["192.0.2.300"]), r"'192.0.2.300' is not an IP"),
        (lambda d: d["mapping_gateways"][3].update(remote_port=None), r"ip_port needs remote_port"),
        (lambda d: d["phones"][1].update(username="1001"), r"username '1001' appears twice"),
        (lambda d: d["phones"][0].update(ha1="s3cret-pass"), r"ha1 is not an md5"),
        (lambda d: d["accounts"][1].update(id=1), r"accounts: id 1 appears twice"),
    ],
)
def test_it_refuses_an_inconsistent_snapshot(sample_snapshot, change, message):
    with pytest.raises(contract.SnapshotError, match=message):
        contract.decode_snapshot(tampered(sample_snapshot, change))


def test_snapshot_error_is_a_value_error():
    assert issubclass(contract.SnapshotError, ValueError)


def test_ha1_is_the_rfc_2617_digest():
    # The worked example of RFC 2617 section 3.5.
    assert contract.digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == "939e7578ed9e3c518a452acee763bce9"


def test_a_rate_is_valid_from_its_start_until_before_its_end():
    rate = msgspec.structs.replace(
        contract.Rate("44", "UK", "0.1", 60, 60, "0", None, None), valid_from_ms=1000, valid_to_ms=2000
    )

    assert [rate.valid_at(t) for t in (999, 1000, 1999, 2000)] == [False, True, True, False]
    assert msgspec.structs.replace(rate, valid_from_ms=None, valid_to_ms=None).valid_at(0)


def test_a_schedule_crossing_midnight_belongs_to_the_day_it_starts():
    friday_nights = contract.RoutingSchedule(1, "nights", (4,), 22 * 60, 2 * 60)

    assert friday_nights.contains(4, 23 * 60)  # Friday 23:00
    assert friday_nights.contains(5, 60)  # Saturday 01:00
    assert not friday_nights.contains(4, 60)  # Friday 01:00 belongs to Thursday's window
    assert not friday_nights.contains(5, 23 * 60)
    assert not friday_nights.contains(5, 2 * 60)


def test_a_daytime_schedule_with_no_weekdays_is_every_day():
    office = contract.RoutingSchedule(1, "office", (), 9 * 60, 17 * 60)

    assert all(office.contains(day, 12 * 60) for day in range(7))
    assert not office.contains(2, 17 * 60)
    assert not office.contains(2, 8 * 60 + 59)


def test_keys_are_built_from_the_prefix():
    keys = contract.SnapshotKeys("ss")

    assert (keys.version, keys.current, keys.channel, keys.blob(7)) == (
        "ss:snapshot:version",
        "ss:snapshot:current",
        "ss:snapshot",
        "ss:snapshot:7",
    )


def test_a_disconnect_request_round_trips_its_asker_cut_to_the_cdr_width_and_junk_is_refused():
    raw = contract.encode_disconnect("c@x", "dynamic_blacklisted", "n1:" + "r" * 200)
    request = contract.decode_disconnect(raw)
    assert (request.call_id, request.end_reason) == ("c@x", "dynamic_blacklisted")
    assert len(request.by) == contract.DISCONNECTED_BY_WIDTH
    # The set-up fraud rules' Lua writes the same fields; the media timeout none but the call.
    assert contract.decode_disconnect(b'{"call_id": "c@x"}').end_reason == "operator_disconnect"
    for junk in (b"[]", b'{"end_reason": "x"}', b'{"call_id": 7}', b"not json"):
        with pytest.raises(msgspec.DecodeError):
            contract.decode_disconnect(junk)
