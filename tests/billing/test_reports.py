"""The billing reports: figures from inserted CDRs and payments match sums worked out by hand.

Two days, 2 and 3 March 2026 (UTC), two customers (Acme, Beta) on two mapping
gateways, two vendors on two routing gateways; around them, calls just
outside the period and an illegal call that no customer report may count.

    call  day  account gw   route  hold ms  fee time  fee   cost
    c1    2    Acme   acme  one     61000    66      0.11  0.07
    c2    2    Acme   acme  two         0     0      0     0      (failed)
    c3    2    Acme   acme  one    120500   126      0.21  0.15
    c4    2    Beta   beta  two     30000    30      0.05  0.06   (sold below cost)
    c5    3    Acme   acme  two     10000    12      0.02  0.01   (at 23:59:59)
    c6    3    Beta   beta  one         0     0      0     0      (cancelled)
    c9    3    Acme   acme  -           0     0      0     0      (no route)
"""

import csv
import datetime as dt
import html
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import reports
from billing.models import CDR, Account, Payment
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.charts import svg_chart
from softswitch_portal.switching.models import MappingGateway, RoutingGateway

pytestmark = pytest.mark.django_db

D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def at(day, hour, minute=0, second=0):
    return timezone.make_aware(dt.datetime(2026, 3, day, hour, minute, second))


@pytest.fixture
def traffic():
    acme = Account.objects.create(name="Acme", credit_limit=Decimal("5"))
    beta = Account.objects.create(name="Beta", low_balance_threshold=Decimal("60"))
    quiet = Account.objects.create(name="Quiet")
    v_one = Account.objects.create(name="Vendor One", account_type="vendor")
    v_two = Account.objects.create(name="Vendor Two", account_type="vendor")
    acme_gw = MappingGateway.objects.create(name="acme-sbc", account=acme, remote_ips=["192.0.2.10"])
    beta_gw = MappingGateway.objects.create(name="beta-sbc", account=beta, remote_ips=["192.0.2.20"])
    one = RoutingGateway.objects.create(name="carrier-one", host="198.51.100.1", clearing_account=v_one)
    two = RoutingGateway.objects.create(name="carrier-two", host="198.51.100.2", clearing_account=v_two)
    customers = {acme: acme_gw, beta: beta_gw}
    routes = {one: v_one, two: v_two}

    def call(uuid, start, account, route, hold_ms, fee_time, fee, cost):
        gateway = customers[account]
        fields = {}
        if route is not None:
            fields = {"routing_gateway": route, "routing_gateway_name": route.name, "vendor_account": routes[route]}
        CDR.objects.create(
            call_uuid=uuid, start_time=start, billing_mode=1, account=account, account_name=account.name,
            mapping_gateway=gateway, mapping_gateway_name=gateway.name, hold_time_ms=hold_ms, fee_time=fee_time,
            fee=Decimal(fee), vendor_cost=Decimal(cost), answer_time=start if hold_ms else None, **fields,
        )  # fmt: skip

    call("c1", at(2, 9), acme, one, 61_000, 66, "0.11", "0.07")
    call("c2", at(2, 10), acme, two, 0, 0, "0", "0")
    call("c3", at(2, 11), acme, one, 120_500, 126, "0.21", "0.15")
    call("c4", at(2, 12), beta, two, 30_000, 30, "0.05", "0.06")
    call("c5", at(3, 23, 59, 59), acme, two, 10_000, 12, "0.02", "0.01")
    call("c6", at(3, 8), beta, one, 0, 0, "0", "0")
    call("c9", at(3, 9), acme, None, 0, 0, "0", "0")
    # Outside the period, on both sides.
    call("before", at(1, 23, 59, 59), acme, one, 60_000, 60, "7.77", "7.00")
    call("after", at(4, 0), acme, one, 60_000, 60, "5.00", "4.00")
    CDR.objects.create(call_uuid="illegal", start_time=at(2, 13), billing_mode=-2, caller_ip="203.0.113.66")

    Account.objects.filter(pk=acme.pk).update(balance=Decimal("-3"))
    Account.objects.filter(pk=beta.pk).update(balance=Decimal("50"))
    Account.objects.filter(pk=quiet.pk).update(balance=Decimal("10"))
    for account, kind, amount, created in (
        (acme, "recharge", "100", at(2, 8)),
        (acme, "deduct", "10", at(3, 8)),
        (acme, "recharge", "50", at(5, 8)),  # after the period
    ):
        payment = Payment.objects.create(account=account, kind=kind, amount=Decimal(amount), balance_after=0)
        Payment.objects.filter(pk=payment.pk).update(created=created)
    return {"acme": acme, "beta": beta, "quiet": quiet, "v_one": v_one, "v_two": v_two, "acme_gw": acme_gw,
            "beta_gw": beta_gw, "one": one, "two": two}  # fmt: skip


def period(group_by=reports.DAY):
    return reports.Period(D2, D3, group_by)


FIGURES = ("attempts", "connected", "asr", "billed_minutes", "revenue", "cost", "margin")


def figures(row, names=FIGURES):
    return tuple(row[name] for name in names)


def D(text):
    return Decimal(text)


# Revenue details


def test_revenue_per_account_and_day(traffic):
    rows = {(row["period"], row["account_name"]): figures(row) for row in reports.revenue(period()).rows}
    assert rows == {
        (D2, "Acme"): (3, 2, D("66.7"), D("3.20"), D("0.32"), D("0.22"), D("0.10")),
        (D2, "Beta"): (1, 1, D("100.0"), D("0.50"), D("0.05"), D("0.06"), D("-0.01")),
        (D3, "Acme"): (2, 1, D("50.0"), D("0.20"), D("0.02"), D("0.01"), D("0.01")),
        (D3, "Beta"): (1, 0, D("0.0"), D("0.00"), D("0"), D("0"), D("0")),
    }


def test_revenue_per_month_and_for_one_account(traffic):
    rows = reports.revenue(period(reports.MONTH), traffic["acme"]).rows
    assert [(row["period"], row["account_name"]) for row in rows] == [(dt.date(2026, 3, 1), "Acme")]
    assert figures(rows[0]) == (5, 3, D("60.0"), D("3.40"), D("0.34"), D("0.23"), D("0.11"))


def test_revenue_totals_and_daily_series_come_from_the_same_pass(traffic):
    report = reports.revenue(period())
    assert figures(report.totals) == (7, 4, D("57.1"), D("3.90"), D("0.39"), D("0.29"), D("0.10"))
    assert {day: (row["revenue"], row["margin"]) for day, row in report.series.items()} == {
        D2: (D("0.37"), D("0.09")),
        D3: (D("0.02"), D("0.01")),
    }


def test_the_totals_of_a_set_of_cdrs_are_one_aggregate_with_the_same_ratios(traffic):
    totals = reports.totals_of(reports.revenue_cdrs(period()))
    assert figures(totals) == figures(reports.revenue(period()).totals)


def test_an_empty_period_totals_zero(traffic):
    empty = reports.revenue(reports.Period(dt.date(2025, 1, 1), dt.date(2025, 1, 2)))
    assert (empty.rows, empty.series) == ([], {})
    assert figures(empty.totals) == (0, 0, None, 0, 0, 0, 0)
    assert figures(reports.totals_of(reports.revenue_cdrs(reports.Period(D2, D2, reports.TOTAL)))) == (
        4, 3, D("75.0"), D("3.70"), D("0.37"), D("0.28"), D("0.09"),
    )  # fmt: skip


# Gateway bill

GATEWAY = ("attempts", "connected", "asr", "acd", "talk_minutes", "billed_minutes", "revenue", "cost", "margin")


def test_gateway_bill_per_mapping_gateway(traffic):
    rows = {row["gateway_name"]: figures(row, GATEWAY) for row in reports.gateway_bill(period(reports.TOTAL)).rows}
    assert rows == {
        # ACD (61 + 120.5 + 10) / 3 = 63.83 s; talk 191.5 s = 3.19 min; billed 204 s = 3.40 min
        "acme-sbc": (5, 3, D("60.0"), D("63.8"), D("3.19"), D("3.40"), D("0.34"), D("0.23"), D("0.11")),
        "beta-sbc": (2, 1, D("50.0"), D("30.0"), D("0.50"), D("0.50"), D("0.05"), D("0.06"), D("-0.01")),
    }


def test_gateway_bill_per_routing_gateway_leaves_out_unrouted_calls(traffic):
    rows = {
        row["gateway_name"]: figures(row, GATEWAY)
        for row in reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING).rows
    }
    assert rows == {
        # ACD (61 + 120.5) / 2 = 90.75 s, rounded half away from zero; talk 181.5 s = 3.025 min
        "carrier-one": (3, 2, D("66.7"), D("90.8"), D("3.03"), D("3.20"), D("0.32"), D("0.22"), D("0.10")),
        "carrier-two": (3, 2, D("66.7"), D("20.0"), D("0.67"), D("0.70"), D("0.07"), D("0.07"), D("0.00")),
    }
    totals = reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING).totals
    assert (totals["attempts"], totals["acd"]) == (6, D("55.4"))  # (61 + 120.5 + 30 + 10) / 4


def failover(uuid, start, traffic, tried, route, hold_ms=0, fee_time=0, fee="0", cost="0"):
    """An Acme call that tried ``tried`` ((routing gateway, SIP answer) in order) and ended on ``route``."""
    acme, gateway = traffic["acme"], traffic["acme_gw"]
    vendor = traffic["v_one"] if route == traffic["one"] else traffic["v_two"]
    return CDR.objects.create(
        call_uuid=uuid, start_time=start, billing_mode=1, account=acme, account_name=acme.name,
        mapping_gateway=gateway, mapping_gateway_name=gateway.name, routing_gateway=route,
        routing_gateway_name=route.name, vendor_account=vendor, hold_time_ms=hold_ms, fee_time=fee_time,
        fee=Decimal(fee), vendor_cost=Decimal(cost), answer_time=start if hold_ms else None,
        vendors_tried=[{"gateway_id": gw.pk, "gateway": gw.name, "ip": gw.host, "status": code} for gw, code in tried],
    )  # fmt: skip


def test_a_call_that_failed_over_counts_an_attempt_for_every_vendor_it_tried(traffic):
    one, two = traffic["one"], traffic["two"]
    # Vendor one answered 503, vendor two 200: a failed attempt for one, a connected call for two.
    failover("c7", at(2, 14), traffic, [(one, 503), (two, 200)], two, 20_000, 24, "0.04", "0.02")
    # Both failed: one attempt each, and the last answer, two's, is not counted twice.
    failover("c8", at(3, 14), traffic, [(one, 503), (two, 486)], two)
    rows = {
        row["gateway_name"]: figures(row, GATEWAY)
        for row in reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING).rows
    }
    assert rows == {
        # Two more attempts, neither connected: ASR 2/5; minutes and money unchanged.
        "carrier-one": (5, 2, D("40.0"), D("90.8"), D("3.03"), D("3.20"), D("0.32"), D("0.22"), D("0.10")),
        # c7 connected (ACD (30 + 10 + 20) / 3, talk 60 s, billed 30 + 12 + 24 s) and c8 failed: 3 of 5.
        "carrier-two": (5, 3, D("60.0"), D("20.0"), D("1.00"), D("1.10"), D("0.11"), D("0.09"), D("0.02")),
    }
    report = reports.gateway_bill(period(), side=reports.ROUTING)
    assert {day: row["attempts"] for day, row in report.series.items()} == {D2: 6, D3: 4}
    assert (report.totals["attempts"], report.totals["revenue"]) == (10, D("0.43"))
    # A call is still one call per mapping gateway.
    mapping = {row["gateway_name"]: row["attempts"] for row in reports.gateway_bill(period(reports.TOTAL)).rows}
    assert mapping == {"acme-sbc": 7, "beta-sbc": 2}


def test_one_routing_gateways_bill_counts_the_calls_that_failed_over_from_it(traffic):
    one, two = traffic["one"], traffic["two"]
    failover("c7", at(2, 14), traffic, [(one, 503), (two, 200)], two, 20_000, 24, "0.04", "0.02")
    only_one = reports.gateway_bill(period(), side=reports.ROUTING, routing_gateway=one)
    assert [(row["period"], row["gateway_name"], row["attempts"], row["connected"]) for row in only_one.rows] == [
        (D2, "carrier-one", 3, 2),  # c1, c3 and c7's failed attempt
        (D3, "carrier-one", 1, 0),
    ]
    assert only_one.totals["revenue"] == D("0.32")
    per_customer = reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING, mapping_gateway=traffic["beta_gw"])
    assert {(row["gateway_name"], row["attempts"]) for row in per_customer.rows} == {
        ("carrier-one", 1),
        ("carrier-two", 1),
    }


def test_a_list_of_vendors_tried_that_is_cut_short_or_malformed_never_loses_the_final_vendor(traffic):
    one, two = traffic["one"], traffic["two"]
    # The list stops before the vendor the call ended on: both attempts still count.
    failover("c7", at(2, 14), traffic, [(one, 503)], two)
    bad = failover("c8", at(2, 15), traffic, [], two)
    CDR.objects.filter(pk=bad.pk).update(vendors_tried=[{"gateway_id": "one"}, "junk", {"status": 503}, None])
    odd = failover("c10", at(2, 16), traffic, [], two)
    CDR.objects.filter(pk=odd.pk).update(vendors_tried={"gateway_id": one.pk})
    rows = {
        row["gateway_name"]: (row["attempts"], row["connected"])
        for row in reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING).rows
    }
    assert rows == {"carrier-one": (4, 2), "carrier-two": (6, 2)}


def test_a_report_over_the_whole_period_still_charts_its_days_from_one_query(traffic):
    with CaptureQueriesContext(connection) as queries:
        report = reports.gateway_bill(period(reports.TOTAL), side=reports.ROUTING)
    assert sum('FROM "billing_cdr"' in q["sql"] for q in queries.captured_queries) == 1
    assert {day: (row["attempts"], row["asr"]) for day, row in report.series.items()} == {
        D2: (4, D("75.0")),
        D3: (2, D("50.0")),
    }


def test_gateway_bill_filters_by_either_gateway(traffic):
    customer_on_vendor = reports.gateway_bill(
        period(reports.TOTAL), side=reports.ROUTING, mapping_gateway=traffic["acme_gw"]
    )
    assert {(row["gateway_name"], row["attempts"]) for row in customer_on_vendor.rows} == {
        ("carrier-one", 2),
        ("carrier-two", 2),
    }
    by_day = reports.gateway_bill(period(), routing_gateway=traffic["one"])
    assert [(row["period"], row["gateway_name"], row["attempts"]) for row in by_day.rows] == [
        (D2, "acme-sbc", 2),
        (D3, "beta-sbc", 1),
    ]


# Vendor clearing


def test_vendor_clearing_per_vendor_account(traffic):
    names = ("attempts", "connected", "talk_minutes", "cost")
    rows = {
        row["vendor_account_name"]: figures(row, names) for row in reports.vendor_clearing(period(reports.TOTAL)).rows
    }
    assert rows == {"Vendor One": (3, 2, D("3.03"), D("0.22")), "Vendor Two": (3, 2, D("0.67"), D("0.07"))}
    only_two = reports.vendor_clearing(period(), traffic["v_two"])
    assert [(row["period"], row["cost"]) for row in only_two.rows] == [(D2, D("0.06")), (D3, D("0.01"))]


# Account balances


def test_account_balances_with_payments_charges_and_low_balance_flags(traffic):
    rows = {
        a.name: (a.balance, a.available, a.recharges, a.deductions, a.cdr_charges, a.low_balance)
        for a in reports.account_balances(period()).rows
    }
    assert rows == {
        "Acme": (D("-3"), D("2"), D("100"), D("10"), D("0.34"), True),  # below SS_CLIENT_LOW_BALANCE_ALARM (0)
        "Beta": (D("50"), D("50"), D("0"), D("0"), D("0.05"), True),  # below its own threshold of 60
        "Quiet": (D("10"), D("10"), D("0"), D("0"), D("0"), False),
        "Vendor One": (D("0"), D("0"), D("0"), D("0"), D("0.22"), False),  # cost accrued, never "low"
        "Vendor Two": (D("0"), D("0"), D("0"), D("0"), D("0.07"), False),
    }


def test_the_low_balance_alarm_parameter_applies_where_an_account_sets_no_threshold(traffic):
    SystemParameter.objects.create(name="SS_CLIENT_LOW_BALANCE_ALARM", value="20")
    low = [a.name for a in reports.account_balances(period(), low_only=True).rows]
    assert low == ["Acme", "Beta", "Quiet"]
    vendors = [a.name for a in reports.account_balances(period(), account_type="vendor").rows]
    assert vendors == ["Vendor One", "Vendor Two"]


def test_balance_totals_keep_customers_and_vendors_apart(traffic):
    totals = reports.account_balances(period()).totals
    assert totals == {
        "accounts": 5,
        "low": 2,
        "customer_balance": D("57"),
        "customer_available": D("62"),
        "recharges": D("100"),
        "deductions": D("10"),
        "fees": D("0.39"),
        "vendor_cost": D("0.29"),
    }


# The pages


def page_text(response):
    return html.unescape(response.content.decode())


def test_the_revenue_page_shows_totals_a_chart_per_day_and_the_rows(admin_client, traffic):
    params = {"date_from": "2026-03-02", "date_to": "2026-03-03", "group_by": "day"}
    response = admin_client.get(reverse("billing:report_revenue"), params)
    assert response.status_code == 200
    page = page_text(response)
    assert "Revenue details" in page and "57.1" in page and "0.3900" in page
    assert page.count('<svg class="chart chart-bar') == 2  # revenue and margin
    assert "02 Mar: 0.3700" in page  # a bar's tooltip
    table = response.context["table"]
    assert [(r.record["period"], r.record["account_name"]) for r in table.paginated_rows] == [
        (D2, "Acme"),
        (D2, "Beta"),
        (D3, "Acme"),
        (D3, "Beta"),
    ]
    # A row's call count opens exactly those calls in the CDR list.
    cdr_link = reverse("billing:cdr_list") + "?start_time_after=2026-03-02T00%3A00&start_time_before=2026-03-03T00%3A00"
    assert html.escape(cdr_link + f"&account={traffic['beta'].pk}") in response.content.decode()


def test_the_report_table_sorts_by_a_column(admin_client, traffic):
    params = {"date_from": "2026-03-02", "date_to": "2026-03-03", "sort": "-margin"}
    response = admin_client.get(reverse("billing:report_revenue"), params)
    margins = [row.record["margin"] for row in response.context["table"].paginated_rows]
    assert margins == [D("0.10"), D("0.01"), D("0"), D("-0.01")]


def export(client, name, **params):
    response = client.get(reverse(name), {**params, "export": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_revenue_export_holds_the_rows_of_the_table(admin_client, traffic):
    rows = export(admin_client, "billing:report_revenue", date_from="2026-03-02", date_to="2026-03-03")
    assert rows[0] == ["Day", "Account", "Calls", "Connected", "ASR", "Billed min", "Revenue", "Cost", "Margin"]
    assert rows[1:] == [
        ["2026-03-02", "Acme", "3", "2", "66.7", "3.20", "0.3200", "0.2200", "0.1000"],
        ["2026-03-02", "Beta", "1", "1", "100.0", "0.50", "0.0500", "0.0600", "-0.0100"],
        ["2026-03-03", "Acme", "2", "1", "50.0", "0.20", "0.0200", "0.0100", "0.0100"],
        ["2026-03-03", "Beta", "1", "0", "0.0", "0.00", "0.0000", "0.0000", "0.0000"],
    ]


def test_the_gateway_bill_exports_the_side_shown(admin_client, traffic):
    params = {"date_from": "2026-03-02", "date_to": "2026-03-03", "group_by": "total", "side": "routing"}
    rows = export(admin_client, "billing:report_gateway_bill", **params)
    assert rows[0][:4] == ["Routing gateway", "Attempts", "Connected", "ASR"]
    assert [row[:5] for row in rows[1:]] == [
        ["carrier-one", "3", "2", "66.7", "90.8"],
        ["carrier-two", "3", "2", "66.7", "20.0"],
    ]
    page = page_text(admin_client.get(reverse("billing:report_gateway_bill"), params))
    assert "Per mapping gateway" in page and "Per routing gateway" in page


def test_the_routing_gateway_page_counts_the_attempts_of_calls_that_failed_over(admin_client, traffic):
    failover("c7", at(2, 14), traffic, [(traffic["one"], 503), (traffic["two"], 200)], traffic["two"], 20_000, 24,
             "0.04", "0.02")  # fmt: skip
    params = {"date_from": "2026-03-02", "date_to": "2026-03-03", "group_by": "total", "side": "routing"}
    response = admin_client.get(reverse("billing:report_gateway_bill"), params)
    assert response.status_code == 200
    assert [(r.record["gateway_name"], r.record["attempts"]) for r in response.context["table"].paginated_rows] == [
        ("carrier-one", 4),
        ("carrier-two", 4),
    ]
    rows = export(admin_client, "billing:report_gateway_bill", **params)
    assert [row[:4] for row in rows[1:]] == [["carrier-one", "4", "2", "50.0"], ["carrier-two", "4", "3", "75.0"]]


def test_the_vendor_and_balance_reports_export_their_rows(admin_client, traffic):
    params = {"date_from": "2026-03-02", "date_to": "2026-03-03", "group_by": "total"}
    vendors = export(admin_client, "billing:report_vendor_clearing", **params)
    assert [row[0] for row in vendors] == ["Vendor account", "Vendor One", "Vendor Two"]
    assert vendors[1][-1] == "0.2200"
    balances = export(admin_client, "billing:report_account_balances", **params, low_only="on")
    assert [row[0] for row in balances] == ["Account", "Acme", "Beta"]


def test_a_period_that_ends_before_it_starts_shows_the_error_and_no_rows(admin_client, traffic):
    response = admin_client.get(reverse("billing:report_revenue"), {"date_from": "2026-03-03", "date_to": "2026-03-02"})
    assert response.status_code == 200
    assert "The period must end on or after its first day." in page_text(response)
    assert "table" not in response.context


def test_the_reports_default_to_the_last_seven_days(admin_client, traffic):
    response = admin_client.get(reverse("billing:report_gateway_bill"))
    today = timezone.localdate()
    assert response.context["period"] == reports.Period(today - dt.timedelta(days=6), today, reports.TOTAL)


def test_the_reports_are_in_the_navigation_and_need_the_permission(client, django_user_model, traffic):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("clerk", password="not-a-real-secret-44")
    client.force_login(user)
    assert client.get(reverse("billing:report_revenue")).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_cdr"))
    user = django_user_model.objects.get(pk=user.pk)
    client.force_login(user)
    response = client.get(reverse("billing:report_revenue"))
    assert response.status_code == 200
    page = page_text(response)
    for url_name in ("report_revenue", "report_gateway_bill", "report_account_balances", "report_vendor_clearing"):
        assert f'href="{reverse("billing:" + url_name)}"' in page
    assert client.get(reverse("billing:report_account_balances")).status_code == 403


# The chart helper


def test_a_bar_chart_has_a_bar_and_a_tooltip_per_point_and_scales_to_the_largest():
    svg = str(svg_chart([("01 Mar", Decimal("2.50")), ("02 Mar", 10), ("03 Mar", None)], title="Revenue"))
    assert svg.startswith('<svg class="chart chart-bar') and svg.count("<rect ") == 3
    assert "<title>01 Mar: 2.50</title>" in svg and "<title>03 Mar: —</title>" in svg
    assert ">10<" in svg  # the top tick is the largest value rounded up to a step


def test_a_line_chart_draws_negative_values_below_zero_and_an_empty_series_says_so():
    svg = str(svg_chart([("a", -5), ("b", 5)], kind="line", unit="%"))
    assert "<polyline" in svg and svg.count("<circle") == 2 and "<title>a: -5 %</title>" in svg
    assert ">-5<" in svg and ">0<" in svg
    assert "No margin in this period." in str(svg_chart([("a", 0)], title="Margin"))
