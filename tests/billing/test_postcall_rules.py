"""The post-call fraud rules, through the real ingest: real Redis streams and windows, real PostgreSQL.

Each test writes CDRs in the call core's format onto the stream, drains it
with the ingest's consumer, and reads what the rules left in Redis: the
dynamic-blacklist sorted sets, the fraud events stream, the windows, the
disconnect requests.
"""

import datetime as dt
import json
import time

import pytest

from billing import fraud
from billing.models import CDR
from callcore.contract import FraudRule, Keys, account_subject, decode_event
from security.models import BlackWhiteListGroup, ListEntry
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.switching.models import MappingGateway
from tests.billing.streams import push
from tests.billing.test_ingest import cdr, drain, make_book

pytestmark = pytest.mark.django_db(transaction=True)

CALLEE = "882345678901"  # a satellite range: a no-answer test number
HOUR_MS = 3_600_000


@pytest.fixture(autouse=True)
def fresh_rules():
    """Parameters, lists and spend history read again in each test (the ingest keeps them a few seconds)."""
    fraud.rules.reset()
    yield
    fraud.rules.reset()


@pytest.fixture
def book(db):
    return make_book()


def hour_start(ms: int) -> int:
    return ms - ms % HOUR_MS


# Calls in the last hours, on an hour's edge that is two hours back: no test straddles "now".
EDGE_MS = hour_start(int(time.time() * 1000)) - 2 * HOUR_MS


def unanswered(n, account, at_ms, callee=CALLEE, **extra):
    """A call that rang a vendor and was not answered, ending at ``at_ms``."""
    record = cdr(n, account, start_ms=at_ms - 21_500, callee=callee, hold_ms=0, **extra)
    record["stop_ms"] = at_ms
    return record


def connected(n, account, at_ms, seconds, callee, **extra):
    record = cdr(n, account, start_ms=at_ms - seconds * 1000 - 1500, callee=callee, hold_ms=seconds * 1000, **extra)
    assert record["stop_ms"] == at_ms
    return record


def ingest(redis_client, *records):
    push(redis_client, *records)
    drain()


def param(name, value):
    SystemParameter.objects.update_or_create(name=name, defaults={"value": str(value)})
    fraud.rules.reset()


def blacklist(redis_client, prefix, gateway=None) -> dict[str, int]:
    members = redis_client.zrange(Keys(prefix).dynamic_blacklist(gateway), 0, -1, withscores=True)
    return {m.decode(): int(s) for m, s in members}


def events(redis_client, prefix):
    return [decode_event(fields[b"e"]) for _, fields in redis_client.xrange(Keys(prefix).fraud_events)]


def uuids(*records):
    return [r["call_uuid"] for r in records]


# -- no-answer callee


def test_ten_unanswered_calls_to_one_callee_within_the_hour_block_it_for_an_hour(prefix, redis_client, book):
    acme = book["acme"]
    calls = [unanswered(n, acme, EDGE_MS + n * 300_000) for n in range(10)]  # 45 minutes apart at most
    ingest(redis_client, *calls[:9])
    assert blacklist(redis_client, prefix) == {}
    warning = events(redis_client, prefix)
    assert [(e.rule, e.severity, e.blocked, e.figures["count"]) for e in warning] == [
        ("no_answer_callee", "warning", False, 6)  # SS_FRAUD_NO_ANSWER_CALLEE_WARNING
    ]

    ingest(redis_client, calls[9])
    assert blacklist(redis_client, prefix) == {CALLEE: calls[9]["stop_ms"] + 3600 * 1000}
    critical = events(redis_client, prefix)[-1]
    assert (critical.rule, critical.severity, critical.subject, critical.scope) == (
        "no_answer_callee", "critical", CALLEE, "central"
    )  # fmt: skip
    assert critical.blocked and critical.ttl_s == 3600 and critical.node == "ingest"
    assert critical.account_id == acme.pk
    assert critical.figures == {"count": 10, "window_s": 3600, "warning": 6, "critical": 10}
    assert critical.evidence == uuids(*calls)
    assert CDR.objects.filter(call_uuid__in=critical.evidence).count() == 10


def test_answered_calls_and_calls_refused_at_set_up_do_not_count_as_unanswered(prefix, redis_client, book):
    acme = book["acme"]
    refused = [
        unanswered(n, acme, EDGE_MS + n * 1000, vendors_tried=[], end_reason="dynamic_blacklisted", sip_status=403)
        for n in range(12)
    ]
    answered = [connected(100 + n, acme, EDGE_MS + n * 1000, 30, CALLEE) for n in range(12)]
    ingest(redis_client, *refused, *answered)
    assert blacklist(redis_client, prefix) == {}
    assert [e for e in events(redis_client, prefix) if e.rule == "no_answer_callee"] == []


def test_the_window_slides_across_an_hour_edge_and_forgets_calls_older_than_it(prefix, redis_client, book):
    acme = book["acme"]
    # Five in the hour's last ten minutes, five in the next hour's first ten: ten within 3600 s.
    across = [unanswered(n, acme, EDGE_MS - 600_000 + n * 120_000) for n in range(5)]
    across += [unanswered(n + 5, acme, EDGE_MS + 60_000 + n * 120_000) for n in range(5)]
    ingest(redis_client, *across)
    assert CALLEE in blacklist(redis_client, prefix)

    # Eleven calls 400 s apart to another number: never ten within any 3600 s.
    spread = [unanswered(50 + n, acme, EDGE_MS + n * 400_000, callee="882999000111") for n in range(11)]
    ingest(redis_client, *spread)
    assert "882999000111" not in blacklist(redis_client, prefix)
    window = Keys(prefix).fraud_window(FraudRule.NO_ANSWER_CALLEE, "882999000111")
    assert redis_client.zcard(window) == 9  # those within 3600 s of the last one
    assert 0 < redis_client.pttl(window) <= 3600 * 1000 + 60_000


def test_report_only_reports_the_critical_figure_and_never_blocks(prefix, redis_client, book):
    param("SS_FRAUD_NO_ANSWER_CALLEE_REPORT_ONLY", 1)
    acme = book["acme"]
    ingest(redis_client, *[unanswered(n, acme, EDGE_MS + n * 1000) for n in range(14)])
    assert blacklist(redis_client, prefix) == {}
    critical = [e for e in events(redis_client, prefix) if e.severity == "critical"]
    assert len(critical) == 1  # when the figure reached the level, not again for every call above it
    assert critical[0].blocked is False and critical[0].figures["count"] == 10


def test_a_disabled_rule_counts_nothing(prefix, redis_client, book):
    param("SS_FRAUD_NO_ANSWER_CALLEE_ENABLED", 0)
    ingest(redis_client, *[unanswered(n, book["acme"], EDGE_MS + n * 1000) for n in range(12)])
    assert blacklist(redis_client, prefix) == {}
    assert events(redis_client, prefix) == []
    assert redis_client.exists(Keys(prefix).fraud_window(FraudRule.NO_ANSWER_CALLEE, CALLEE)) == 0


# -- white list, exemption, scope


def gateway(account, name, *, standalone=False, white=()):
    mgw = MappingGateway.objects.create(
        name=name, account=account, remote_ips=[f"192.0.2.{MappingGateway.objects.count() + 20}"],
        dynamic_blacklist_standalone=standalone,
    )  # fmt: skip
    if white:
        group = BlackWhiteListGroup.objects.create(name=f"{name} white", kind="white")
        for number, match in white:
            ListEntry.objects.create(group=group, number=number, match=match)
        mgw.callee_list_groups.add(group)
    return mgw


def test_a_number_on_a_white_list_of_the_calls_gateway_is_never_blocked(prefix, redis_client, book):
    acme = book["acme"]
    listed = gateway(acme, "listed", white=[("88234", "prefix")])
    other = gateway(acme, "other")
    ingest(redis_client, *[unanswered(n, acme, EDGE_MS + n * 1000, mapping_gateway_id=listed.pk) for n in range(12)])
    assert blacklist(redis_client, prefix) == {}
    critical = [e for e in events(redis_client, prefix) if e.severity == "critical"]
    assert [(e.blocked, e.figures["not_blocked"]) for e in critical] == [(False, "white list")]

    # The same number from a gateway whose lists do not hold it is blocked.
    ingest(redis_client, unanswered(99, acme, EDGE_MS + 20_000, mapping_gateway_id=other.pk))
    assert CALLEE in blacklist(redis_client, prefix)


def test_an_exempted_number_is_not_added_again_while_its_exemption_lasts(prefix, redis_client, book):
    acme = book["acme"]
    keys = Keys(prefix)
    redis_client.zadd(keys.fraud_exempt, {CALLEE: EDGE_MS + HOUR_MS})
    ingest(redis_client, *[unanswered(n, acme, EDGE_MS + n * 1000) for n in range(12)])
    assert blacklist(redis_client, prefix) == {}
    assert [e.figures.get("not_blocked") for e in events(redis_client, prefix) if e.severity == "critical"] == [
        "exempt"
    ]

    # Calls after the exemption ended block it again.
    later = EDGE_MS + HOUR_MS + 1000
    ingest(redis_client, *[unanswered(20 + n, acme, later + n * 1000) for n in range(10)])
    assert CALLEE in blacklist(redis_client, prefix)


@pytest.mark.parametrize(
    ("run_mode", "standalone", "scoped"),
    [(1, True, True), (1, False, False), (0, True, False)],
    ids=["standalone-mode-standalone-gateway", "standalone-mode-plain-gateway", "central-mode"],
)
def test_a_block_goes_to_the_gateways_own_list_only_in_standalone_mode_for_a_standalone_gateway(
    prefix, redis_client, book, run_mode, standalone, scoped
):
    param("SS_BLACK_LIST_DYNAMIC_RUN_MODE", run_mode)
    acme = book["acme"]
    mgw = gateway(acme, "trunk", standalone=standalone)
    ingest(redis_client, *[unanswered(n, acme, EDGE_MS + n * 1000, mapping_gateway_id=mgw.pk) for n in range(10)])
    own, central = blacklist(redis_client, prefix, mgw.pk), blacklist(redis_client, prefix)
    assert (CALLEE in own, CALLEE in central) == (scoped, not scoped)
    critical = events(redis_client, prefix)[-1]
    assert (critical.scope, critical.mapping_gateway_id) == (("gateway", mgw.pk) if scoped else ("central", None))


def test_a_block_asks_the_node_of_each_matching_live_call_to_end_it(prefix, redis_client, book):
    acme = book["acme"]
    keys = Keys(prefix)
    live = {
        "c-1": {"caller": "15550001", "callee": CALLEE, "account_id": acme.pk, "node": "node-a"},
        "c-2": {"caller": CALLEE, "callee": "15550002", "account_id": acme.pk, "node": "node-b"},
        "c-3": {"caller": "15550003", "callee": "15550004", "account_id": acme.pk, "node": "node-a"},
    }
    redis_client.hset(keys.live_calls, mapping={k: json.dumps(v) for k, v in live.items()})
    ingest(redis_client, *[unanswered(n, acme, EDGE_MS + n * 1000) for n in range(10)])
    asked = {
        node: [json.loads(r) for r in redis_client.lrange(keys.disconnects(node), 0, -1)]
        for node in ("node-a", "node-b")
    }
    assert asked == {
        "node-a": [{"call_id": "c-1", "end_reason": "dynamic_blacklisted", "by": "ingest:no_answer_callee"}],
        "node-b": [{"call_id": "c-2", "end_reason": "dynamic_blacklisted", "by": "ingest:no_answer_callee"}],
    }


# -- redelivery


def test_a_batch_delivered_again_is_not_counted_again(prefix, redis_client, book):
    acme = book["acme"]
    calls = [unanswered(n, acme, EDGE_MS + n * 1000) for n in range(9)]
    ingest(redis_client, *calls)
    window = Keys(prefix).fraud_window(FraudRule.NO_ANSWER_CALLEE, CALLEE)
    assert redis_client.zcard(window) == 9
    # The same nine again (a crash before the acknowledgement): stored already, counted already.
    redis_client.delete(window)
    ingest(redis_client, *calls)
    assert redis_client.zcard(window) == 0
    assert blacklist(redis_client, prefix) == {}
    # Old and new in one batch: only the new one counts.
    ingest(redis_client, *calls[:5], unanswered(9, acme, EDGE_MS + 9000))
    assert redis_client.zcard(window) == 1
    assert CDR.objects.count() == 10


# -- short-call burst


def test_short_connected_calls_from_one_account_to_one_prefix_raise_a_warning(prefix, redis_client, book):
    acme = book["acme"]
    burst = [connected(n, acme, EDGE_MS + n * 60_000, 3, f"44791100000{n}") for n in range(5)]
    longer = [connected(10 + n, acme, EDGE_MS + n * 60_000, 12, f"44791100001{n}") for n in range(5)]
    ingest(redis_client, *burst, *longer)
    found = [e for e in events(redis_client, prefix) if e.rule == "short_call_burst"]
    assert [(e.severity, e.blocked, e.subject, e.figures["count"]) for e in found] == [
        ("warning", False, "447911000004", 5)
    ]
    assert found[0].evidence == uuids(*burst)
    assert blacklist(redis_client, prefix) == {}  # the default critical level is 20


def test_a_short_call_burst_over_the_critical_level_blocks_each_number_it_goes_on_to(prefix, redis_client, book):
    param("SS_FRAUD_SHORT_CALL_BURST_CRITICAL", 5)
    acme = book["acme"]
    burst = [connected(n, acme, EDGE_MS + n * 10_000, 2, f"44791100000{n}") for n in range(7)]
    ingest(redis_client, *burst)
    assert sorted(blacklist(redis_client, prefix)) == ["447911000004", "447911000005", "447911000006"]
    # Counted per account and six-digit prefix.
    assert redis_client.zcard(Keys(prefix).fraud_window(FraudRule.SHORT_CALL_BURST, f"{acme.pk}:447911")) == 7


# -- spend velocity on the actual vendor cost


def test_an_account_without_history_is_blocked_when_its_hourly_vendor_cost_passes_the_floor(prefix, redis_client, book):
    param("SS_FRAUD_SPEND_VELOCITY_ACTUAL_FLOOR", 10_000)  # 1.00
    acme, vendor = book["acme"], book["vendor_a"]
    # 0.04 a minute at vendor A: ten-minute calls cost it 0.40 each.
    calls = [connected(n, acme, EDGE_MS + n * 600_000, 600, "442071838750", vendor=vendor) for n in range(4)]
    ingest(redis_client, *calls[:2])
    assert blacklist(redis_client, prefix) == {}
    ingest(redis_client, *calls[2:])
    subject = account_subject(acme.pk)
    assert blacklist(redis_client, prefix) == {subject: calls[2]["stop_ms"] + 3600 * 1000}
    critical = events(redis_client, prefix)[-1]
    assert (critical.rule, critical.subject, critical.figures["amount"], critical.figures["critical"]) == (
        "spend_velocity_actual", subject, 12_000, 10_000
    )  # fmt: skip
    assert critical.evidence == uuids(*calls[:3])
    key = Keys(prefix).fraud_window(FraudRule.SPEND_VELOCITY_ACTUAL, subject)
    assert int(redis_client.get(f"{key}:sum")) == 16_000


def test_the_spend_limits_follow_the_accounts_average_daily_cost(prefix, redis_client, book):
    acme, vendor = book["acme"], book["vendor_a"]
    # Twenty ten-minute calls at 0.04 a minute: 8.00 of vendor cost, ten days back.
    old = [connected(500 + n, acme, EDGE_MS - 10 * 86_400_000 + n * 700_000, 600, "442071838750", vendor=vendor)
           for n in range(20)]  # fmt: skip
    ingest(redis_client, *old)
    first = dt.datetime.fromtimestamp(old[0]["start_ms"] / 1000, dt.UTC)
    # Averaged over the days since the account's first call, not over the whole month.
    assert fraud.daily_spend([acme.pk], first + dt.timedelta(days=4)) == {acme.pk: 80_000 // 4}
    assert fraud.daily_spend([acme.pk], first + dt.timedelta(days=40)) == {acme.pk: 0}  # out of the 30 days
    ctx = fraud.load_context()
    levels = ctx.levels[FraudRule.SPEND_VELOCITY_ACTUAL]
    ctx.daily_spend = {acme.pk: 40_000_000}  # 4000.00 a day: warning 10% = 400.00, critical 25% = 1000.00
    assert ctx.spend_limits(acme.pk, levels) == (4_000_000, 10_000_000)
    ctx.daily_spend = {acme.pk: 20_000}  # 2.00 a day: both below the floor (100.00), which holds
    assert ctx.spend_limits(acme.pk, levels) == (1_000_000, 1_000_000)


def test_the_call_cores_spend_base_is_published_for_every_customer_with_a_history(prefix, redis_client, book):
    acme, vendor = book["acme"], book["vendor_a"]
    old = [connected(700 + n, acme, EDGE_MS - 2 * 86_400_000 + n * 700_000, 600, "442071838750", vendor=vendor)
           for n in range(20)]  # fmt: skip
    ingest(redis_client, *old)
    first = dt.datetime.fromtimestamp(old[0]["start_ms"] / 1000, dt.UTC)
    key = Keys(prefix).fraud_daily_spend
    redis_client.hset(key, "999999", 1)  # an account gone since: dropped with the rest
    assert fraud.publish_daily_spend(first + dt.timedelta(days=4)) == 1
    assert redis_client.hgetall(key) == {str(acme.pk).encode(): str(80_000 // 4).encode()}


# -- long calls


def test_a_call_longer_than_two_hours_raises_a_warning_and_blocks_nothing(prefix, redis_client, book):
    acme = book["acme"]
    ingest(redis_client, connected(1, acme, EDGE_MS, 7300, "447911123456"), connected(2, acme, EDGE_MS, 7100, "4479"))
    found = [e for e in events(redis_client, prefix) if e.rule == "long_call"]
    assert [(e.severity, e.subject, e.figures, e.blocked) for e in found] == [
        ("warning", "447911123456", {"hold_s": 7300, "warning": 7200, "critical": 0}, False)
    ]
    assert blacklist(redis_client, prefix) == {}
