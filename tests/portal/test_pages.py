"""Every model's pages, generated from one declaration per model (NetBox's ViewTestCases, in pytest).

Each declaration names the pages' URL prefix, the fixture object the list and
detail pages must show, a valid POST for the add page, the bad values the form
must refuse (with a fragment of the message shown beside the field), and how
to make a row that nothing protects for the delete test.
"""

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, get_resolver, reverse

from billing.models import Account, Payment, Rate, RateTable
from callcore.contract import PARAMETERS
from security.models import Alarm, BlackWhiteListGroup, DynamicBlacklistEntry, IpCountryRange, ListEntry
from softswitch_portal.core.models import SystemParameter
from softswitch_portal.generic.attributes import model_fields
from softswitch_portal.generic.views import ObjectView
from softswitch_portal.switching.models import (
    CallerNumberPool,
    MappingGateway,
    NumberTransformRule,
    Phone,
    RoutingGateway,
    RoutingSchedule,
)


@dataclass(frozen=True)
class Pages:
    name: str  # "billing:account": the list is billing:account_list, the detail billing:account
    existing: str  # the portal_objects attribute the list and detail pages must show
    shows: str  # text of that object on both pages
    form_data: Callable | None = None  # objects -> a valid POST for the add page; None: no add page
    created: dict = field(default_factory=dict)  # a lookup proving the POST created the row
    # (field, bad value, fragment of the message shown beside the field[, the field it is shown beside])
    invalid: tuple = ()
    fresh: Callable | None = None  # objects -> a row nothing protects, for the delete test; None: no delete

    @property
    def model(self):
        namespace, model_name = self.name.split(":")
        # A model's pages are in its app's URL namespace unless it names another (url_namespace).
        return next(
            model
            for model in apps.get_models()
            if model._meta.model_name == model_name
            and getattr(model, "url_namespace", model._meta.app_label) == namespace
        )

    def __str__(self):
        return self.name


PAGES = [
    Pages(
        "billing:account",
        existing="customer",
        shows="Acme Telecom",
        form_data=lambda o: {
            "name": "Beta Voice",
            "account_type": "customer",
            "rate_table": o.retail.pk,
            "credit_limit": "10",
            "capacity": "0",
            "anti_overdraft": "on",
            "alarm_email": "noc@beta.example",
        },
        created={"name": "Beta Voice", "credit_limit": Decimal("10")},
        invalid=(
            ("credit_limit", "-5", "greater than or equal to 0"),
            ("credit_limit", "lots", "Enter a number"),
            ("alarm_email", "noc-at-beta", "Enter a valid email address"),
        ),
        fresh=lambda o: Account.objects.create(name="Spare account"),
    ),
    Pages(
        "billing:payment",
        existing="payment",
        shows="wire 42",
        form_data=lambda o: {"account": o.customer.pk, "kind": "recharge", "amount": "25.50", "memo": "cash desk"},
        created={"memo": "cash desk", "amount": Decimal("25.50")},
        invalid=(
            ("amount", "-3", "greater than or equal to 0.0001"),
            ("amount", "ten", "Enter a number"),
            ("kind", "refund", "Select a valid choice"),
        ),
    ),
    Pages(
        "billing:ratetable",
        existing="retail",
        shows="Retail deck",
        form_data=lambda o: {"name": "Wholesale deck", "currency": "eur"},
        created={"name": "Wholesale deck", "currency": "EUR"},
        invalid=(("currency", "E1R", "not a three-letter currency code"), ("currency", "EURO", "at most 3 characters")),
        fresh=lambda o: RateTable.objects.create(name="Old deck"),
    ),
    Pages(
        "billing:rate",
        existing="rate",
        shows="Germany Berlin",
        form_data=lambda o: {
            "rate_table": o.retail.pk,
            "prefix": "4989",
            "area": "Germany Munich",
            "price_per_minute": "0.02",
            "first_period": "30",
            "next_period": "6",
            "connect_fee": "0",
        },
        created={"prefix": "4989", "first_period": 30, "next_period": 6},
        invalid=(
            ("prefix", "49AB", "'49AB' is not a prefix"),
            ("price_per_minute", "-0.01", "greater than or equal to 0"),
            ("price_per_minute", "cheap", "Enter a number"),
            ("first_period", "0", "greater than or equal to 1"),
            ("valid_from", "yesterday", "Enter a valid date/time"),
        ),
        fresh=lambda o: o.rate,
    ),
    Pages("billing:cdr", existing="cdr", shows="4989123456"),
    Pages(
        "switching:mappinggateway",
        existing="mapping",
        shows="acme-sbc",
        form_data=lambda o: {
            "name": "beta-sbc",
            "account": o.customer.pk,
            "enabled": "on",
            "auth_mode": "ip",
            "remote_ips": "203.0.113.5, 203.0.113.0/28\n2001:db8::1",
            "capacity": "10",
            "cps_limit": "5",
            "conversation_limit": "3600",
            "route_policy": "priority",
            "caller_transforms": [o.caller_rule.pk],
            "caller_list_groups": [o.blacklist.pk],
            "prefix_allow": "49\n44",
        },
        created={"name": "beta-sbc", "remote_ips": ["203.0.113.5", "203.0.113.0/28", "2001:db8::1"]},
        invalid=(
            ("remote_ips", "192.0.2.1, 10.0.0.300", "'10.0.0.300' is not an IP address or CIDR network"),
            ("remote_ips", "", "This field is required"),
            ("prefix_allow", "49, 4x", "'4x' is not a prefix"),
            ("capacity", "-1", "greater than or equal to 0"),
            ("auth_mode", "ip_port", "needs the port", "remote_port"),
        ),
        fresh=lambda o: MappingGateway.objects.create(name="old-sbc", account=o.customer, remote_ips=["192.0.2.99"]),
    ),
    Pages(
        "switching:routinggateway",
        existing="routing",
        shows="carrier-one",
        form_data=lambda o: {
            "name": "carrier-two",
            "enabled": "on",
            "host": "gw.carrier2.example",
            "port": "5060",
            "transport": "udp",
            "prefixes": "44, 33",
            "priority": "10",
            "capacity": "0",
            "cps_limit": "0",
            "conversation_limit": "0",
            "clearing_account": o.vendor.pk,
            "failover_codes": "486, 603",
            "schedules": [o.schedule.pk],
        },
        created={"name": "carrier-two", "failover_codes": [486, 603], "prefixes": ["44", "33"]},
        invalid=(
            ("failover_codes", "486, 200", "200 is not a final SIP failure status"),
            ("failover_codes", "486, busy", "'busy' is not a whole number"),
            ("host", "bad host!", "is neither an IP address nor a host name"),
            ("port", "70000", "less than or equal to 65535"),
            ("prefixes", "44, +4#, 4a", "'4a' is not a prefix"),
        ),
        fresh=lambda o: RoutingGateway.objects.create(name="old-carrier", host="192.0.2.200"),
    ),
    Pages(
        "switching:phone",
        existing="phone",
        shows="4930555",
        form_data=lambda o: {
            "username": "4930777",
            "password": "long-enough-secret",
            "account": o.customer.pk,
            "enabled": "on",
            "capacity": "2",
            "allowed_networks": "192.0.2.0/24",
            "allowed_countries": "de, at",
        },
        created={"username": "4930777", "allowed_countries": ["DE", "AT"]},
        invalid=(
            ("password", "short", "at least 10 characters"),
            ("allowed_networks", "300.1.1.1", "'300.1.1.1' is not an IP address or CIDR network"),
            ("allowed_countries", "DE, Germany", "'GERMANY' is not a two-letter country code"),
            ("username", "49-30", "is not a phone number"),
        ),
        fresh=lambda o: Phone.objects.create(username="4930666", password="another-secret", account=o.customer),
    ),
    Pages(
        "switching:numbertransformrule",
        existing="caller_rule",
        shows="Strip 00",
        form_data=lambda o: {
            "name": "Strip 0",
            "target": "callee",
            "priority": "100",
            "match_prefix": "0",
            "min_length": "5",
            "max_length": "0",
            "strip_digits": "1",
            "prepend": "",
        },
        created={"name": "Strip 0", "strip_digits": 1},
        invalid=(
            ("match_prefix", "0x", "'0x' is not a prefix"),
            ("strip_digits", "33", "less than or equal to 32"),
            ("max_length", "3", "at least the min length"),
        ),
        fresh=lambda o: NumberTransformRule.objects.create(name="Unused rule"),
    ),
    Pages(
        "switching:routingschedule",
        existing="schedule",
        shows="Office hours",
        form_data=lambda o: {"name": "Nights", "weekdays": ["5", "6"], "start_time": "22:00", "end_time": "06:00"},
        created={"name": "Nights", "weekdays": [5, 6]},
        invalid=(
            ("end_time", "22:00", "must differ from start time"),
            ("weekdays", ["7"], "Select a valid choice"),
            ("start_time", "25:00", "Enter a valid time"),
        ),
        fresh=lambda o: o.schedule,
    ),
    Pages(
        "switching:callernumberpool",
        existing="pool",
        shows="Berlin CLIs",
        form_data=lambda o: {"name": "Munich CLIs", "mode": "random", "numbers": "498911\n498922"},
        created={"name": "Munich CLIs", "numbers": ["498911", "498922"]},
        invalid=(
            ("numbers", "498911, 49-89", "'49-89' is not a phone number"),
            ("numbers", " , ", "This field is required"),
        ),
        fresh=lambda o: o.pool,
    ),
    Pages(
        "switching:systemparameter",
        existing="parameter",
        shows="SS_MAX_CPS",
        form_data=lambda o: {"name": "SS_SIP_TIMEOUT_INVITE", "value": "12"},
        created={"name": "SS_SIP_TIMEOUT_INVITE", "value": "12"},
        invalid=(
            ("value", "999", "SS_SIP_TIMEOUT_INVITE must be at most 300"),
            ("value", "ten", "SS_SIP_TIMEOUT_INVITE must be an integer"),
            ("name", "SS_NO_SUCH_THING", "Select a valid choice"),
        ),
        fresh=lambda o: o.parameter,
    ),
    Pages(
        "security:blackwhitelistgroup",
        existing="blacklist",
        shows="Premium fraud",
        form_data=lambda o: {"name": "VIP callers", "kind": "white"},
        created={"name": "VIP callers", "kind": "white"},
        invalid=(("kind", "grey", "Select a valid choice"),),
        fresh=lambda o: o.blacklist,
    ),
    Pages(
        "security:listentry",
        existing="entry",
        shows="900",
        form_data=lambda o: {"group": o.blacklist.pk, "number": "4930999", "match": "exact"},
        created={"number": "4930999", "match": "exact"},
        invalid=(("number", "49x", "is not a phone number"), ("number", "+", "is not a phone number")),
        fresh=lambda o: o.entry,
    ),
    Pages("security:dynamicblacklistentry", existing="blocked", shows="4915199999"),
    Pages(
        "security:ipcountryrange",
        existing="ip_range",
        shows="203.0.113.64",
        form_data=lambda o: {"start_ip": "198.51.100.0", "count": "128", "country": "de", "memo": "Frankfurt"},
        created={"start_ip": "198.51.100.0", "count": 128, "country": "DE"},
        invalid=(
            ("start_ip", "198.51.100.300", "Enter a valid IPv4 address"),
            ("count", "0", "greater than or equal to 1"),
            ("start_ip", "203.0.113.70", "Overlaps 203.0.113.64-203.0.113.79 (FR)"),
            ("country", "Germany", "at most 2 characters"),
            ("country", "D1", "not a two-letter country code"),
        ),
        fresh=lambda o: IpCountryRange.objects.create(start_ip="10.0.0.0", count=256, country="NL"),
    ),
    # Raised by the switch: no add, edit or delete pages.
    Pages("security:alarm", existing="alarm", shows="203.0.113.99"),
]

CREATABLE = [p for p in PAGES if p.form_data]
INVALID = [pytest.param(p, bad, id=f"{p.name}-{bad[0]}={bad[1]!r}") for p in CREATABLE for bad in p.invalid]
DELETABLE = [p for p in PAGES if p.fresh]


def text(response):
    return html.unescape(response.content.decode())


def form_errors(response):
    context = response.context or {}
    form = context.get("form")
    return dict(form.errors) if form is not None else {}


@pytest.mark.django_db
@pytest.mark.parametrize("pages", PAGES, ids=str)
def test_list_page_shows_the_row(operator_client, portal_objects, pages):
    response = operator_client.get(reverse(f"{pages.name}_list"))
    assert response.status_code == 200
    assert pages.shows in text(response)


@pytest.mark.django_db
@pytest.mark.parametrize("pages", PAGES, ids=str)
def test_detail_page_renders(operator_client, portal_objects, pages):
    obj = getattr(portal_objects, pages.existing)
    response = operator_client.get(reverse(pages.name, args=[obj.pk]))
    assert response.status_code == 200
    assert pages.shows in text(response)


@pytest.mark.django_db
@pytest.mark.parametrize("pages", PAGES, ids=str)
def test_list_page_exports_csv(operator_client, portal_objects, pages):
    response = operator_client.get(reverse(f"{pages.name}_list"), {"export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert pages.shows in b"".join(response.streaming_content).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("pages", CREATABLE, ids=str)
def test_create_with_valid_data(operator_client, portal_objects, pages):
    assert operator_client.get(reverse(f"{pages.name}_add")).status_code == 200
    response = operator_client.post(reverse(f"{pages.name}_add"), pages.form_data(portal_objects))
    assert response.status_code == 302, form_errors(response)
    created = pages.model.objects.get(**pages.created)
    assert response.url == created.get_absolute_url()


@pytest.mark.django_db
@pytest.mark.parametrize(("pages", "bad"), INVALID)
def test_create_with_a_bad_value_shows_the_error_beside_the_field(operator_client, portal_objects, pages, bad):
    name, value, message, *shown_beside = bad
    before = pages.model.objects.count()
    response = operator_client.post(reverse(f"{pages.name}_add"), {**pages.form_data(portal_objects), name: value})
    assert response.status_code == 200
    beside = shown_beside[0] if shown_beside else name
    assert beside in form_errors(response), form_errors(response)
    assert any(message in error for error in form_errors(response)[beside])
    page = text(response)
    assert page.count(message) >= 2, "shown in the summary at the top and beside the field"
    assert pages.model.objects.count() == before


def stored_values(obj):
    """Every field of ``obj`` as the database holds it now (many-to-many as id sets), but the save's timestamp."""
    row = type(obj).objects.get(pk=obj.pk)
    values = {
        field.attname: getattr(row, field.attname)
        for field in row._meta.concrete_fields
        if not getattr(field, "auto_now", False)
    }
    values.update(
        {field.name: set(getattr(row, field.name).values_list("pk", flat=True)) for field in row._meta.many_to_many}
    )
    return values


@pytest.mark.django_db
@pytest.mark.parametrize("pages", [p for p in CREATABLE if p.fresh], ids=str)
def test_edit_page_saves_the_object(operator_client, portal_objects, pages):
    obj = pages.fresh(portal_objects)
    url = reverse(f"{pages.name}_edit", args=[obj.pk])
    response = operator_client.get(url)
    assert response.status_code == 200
    # Posting the form back as rendered must save it unchanged: nothing is lost in the round trip.
    form = response.context["form"]
    data = {}
    for bound in form:
        value = bound.value()
        if value is None or value is False:
            continue
        if isinstance(value, list | tuple) and not isinstance(value, str):
            prepared = bound.field.prepare_value(value)
            data[bound.name] = prepared if isinstance(prepared, str) else [str(v) for v in value]
        else:
            data[bound.name] = bound.field.prepare_value(value) if not isinstance(value, bool) else "on"
    before = stored_values(obj)
    response = operator_client.post(url, data)
    assert response.status_code == 302, form_errors(response)
    assert stored_values(obj) == before


@pytest.mark.django_db
@pytest.mark.parametrize("pages", DELETABLE, ids=str)
def test_delete_after_confirmation(operator_client, portal_objects, pages):
    obj = pages.fresh(portal_objects)
    url = reverse(f"{pages.name}_delete", args=[obj.pk])
    confirm = operator_client.get(url)
    assert confirm.status_code == 200
    assert "This cannot be undone" in text(confirm)
    response = operator_client.post(url)
    assert response.status_code == 302
    assert response.url == reverse(f"{pages.name}_list")
    assert not pages.model.objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("pages", PAGES, ids=str)
def test_pages_need_a_logged_in_user(client, portal_objects, pages):
    obj = getattr(portal_objects, pages.existing)
    for url in (reverse(f"{pages.name}_list"), reverse(pages.name, args=[obj.pk])):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login") + "?next=")


@pytest.mark.django_db
def test_home_and_login_pages(operator_client, portal_objects):
    anonymous = Client()
    assert anonymous.get(reverse("home")).status_code == 302
    assert anonymous.get(reverse("login")).status_code == 200
    response = operator_client.get(reverse("home"))
    assert response.status_code == 200
    page = text(response)
    assert "Illegal calls" in page and "Mapping gateways" in page


@pytest.mark.django_db
def test_a_user_without_the_model_permission_is_refused(client, django_user_model, portal_objects):
    viewer = django_user_model.objects.create_user("viewer", password="not-a-real-secret-43")
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client.force_login(viewer)
    assert client.get(reverse("billing:account_list")).status_code == 200
    assert client.get(reverse("billing:account_add")).status_code == 403
    assert client.get(reverse("switching:phone_list")).status_code == 403
    # The list hides what the user may not do.
    assert reverse("billing:account_add") not in text(client.get(reverse("billing:account_list")))


# Behaviour particular to some models


@pytest.mark.django_db
def test_a_protected_account_is_not_deleted_and_the_page_says_what_uses_it(operator_client, portal_objects):
    url = reverse("billing:account_delete", args=[portal_objects.customer.pk])
    confirm = text(operator_client.get(url))
    assert "cannot be deleted" in confirm and "acme-sbc" in confirm and "4930555" in confirm
    response = operator_client.post(url)
    assert response.status_code == 409
    assert "cannot be deleted" in text(response)
    assert Account.objects.filter(pk=portal_objects.customer.pk).exists()


@pytest.mark.django_db
def test_deleting_a_rate_table_says_its_rates_go_with_it(operator_client, portal_objects):
    table = RateTable.objects.create(name="Deck to drop")
    Rate.objects.create(rate_table=table, prefix="44", price_per_minute=Decimal("0.01"))
    page = text(operator_client.get(reverse("billing:ratetable_delete", args=[table.pk])))
    assert "It also deletes" in page and "rates" in page


@pytest.mark.django_db
def test_the_account_form_cannot_touch_the_balance(operator_client, portal_objects):
    customer = portal_objects.customer
    form = operator_client.get(reverse("billing:account_edit", args=[customer.pk])).context["form"]
    assert "balance" not in form.fields
    data = {"name": customer.name, "account_type": "customer", "credit_limit": "5", "capacity": "0", "balance": "999"}
    response = operator_client.post(reverse("billing:account_edit", args=[customer.pk]), data)
    assert response.status_code == 302, form_errors(response)
    customer.refresh_from_db()
    assert customer.balance == Decimal("100")
    detail = text(operator_client.get(customer.get_absolute_url()))
    assert "Balance" in detail and "100.0000" in detail


@pytest.mark.django_db
def test_a_payment_moves_the_balance_through_the_service(operator_client, portal_objects, operator):
    customer = portal_objects.customer
    add_url = reverse("billing:payment_add")
    assert operator_client.get(add_url, {"account": customer.pk}).context["form"]["account"].value() == str(customer.pk)
    response = operator_client.post(add_url, {"account": customer.pk, "kind": "deduct", "amount": "30", "memo": "fix"})
    assert response.status_code == 302, form_errors(response)
    customer.refresh_from_db()
    assert customer.balance == Decimal("70")
    payment = Payment.objects.get(memo="fix")
    assert (payment.balance_after, payment.created_by) == (Decimal("70"), operator)


@pytest.mark.django_db
def test_a_payment_the_service_refuses_shows_its_reason(operator_client, portal_objects, monkeypatch):
    from django.core.exceptions import ValidationError

    def refuse(account, kind, amount, user, memo=""):
        raise ValidationError({"amount": "Refused by the service."})

    monkeypatch.setattr("billing.services.apply_payment", refuse)
    data = {"account": portal_objects.customer.pk, "kind": "recharge", "amount": "5"}
    response = operator_client.post(reverse("billing:payment_add"), data)
    assert response.status_code == 200
    assert form_errors(response)["amount"] == ["Refused by the service."]
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_payments_and_cdrs_have_only_the_pages_they_should(portal_objects):
    for name in ("billing:payment_edit", "billing:payment_delete", "billing:cdr_edit", "billing:cdr_delete"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=[1])
    for name in ("billing:cdr_add", "security:dynamicblacklistentry_add"):
        with pytest.raises(NoReverseMatch):
            reverse(name)


@pytest.mark.django_db
def test_the_parameter_list_shows_every_declared_parameter_with_its_value(operator_client, portal_objects):
    page = text(operator_client.get(reverse("switching:systemparameter_list")))
    for declaration in PARAMETERS:
        assert declaration.name in page
    assert "250" in page  # SS_MAX_CPS as stored
    add_url = reverse("switching:systemparameter_add")
    assert f"{add_url}?name=SS_SIP_TIMEOUT_INVITE" in page  # a parameter at its default offers "Set"
    rows = operator_client.get(reverse("switching:systemparameter_list"), {"q": "sip_timeout"}).context["table"].rows
    assert [row.record["name"] for row in rows] == ["SS_SIP_TIMEOUT_INVITE"]


@pytest.mark.django_db
def test_a_parameter_is_added_from_its_declaration_and_edited_within_its_range(operator_client, portal_objects):
    add = operator_client.get(reverse("switching:systemparameter_add"), {"name": "SS_SIP_TIMEOUT_INVITE"})
    form = add.context["form"]
    assert form["value"].value() == 8  # the default, offered as the starting value
    assert "SS_MAX_CPS" not in dict(form.fields["name"].choices)  # already stored: edit it instead
    edit_url = reverse("switching:systemparameter_edit", args=[portal_objects.parameter.pk])
    response = operator_client.post(edit_url, {"name": "SS_MAX_CPS", "value": "-1"})
    assert "SS_MAX_CPS must be at least 0" in text(response)
    response = operator_client.post(edit_url, {"name": "SS_SOMETHING_ELSE", "value": "300"})
    assert response.status_code == 302
    portal_objects.parameter.refresh_from_db()
    assert (portal_objects.parameter.name, portal_objects.parameter.value) == ("SS_MAX_CPS", "300")


@pytest.mark.django_db
def test_a_dynamic_blacklist_entry_changes_only_status_and_expiry(operator_client, portal_objects):
    blocked = portal_objects.blocked
    url = reverse("security:dynamicblacklistentry_edit", args=[blocked.pk])
    response = operator_client.post(url, {"status": "confirmed", "expires_at": "2030-01-01T00:00", "number": "1"})
    assert response.status_code == 302, form_errors(response)
    blocked.refresh_from_db()
    assert blocked.status == "confirmed" and blocked.expires_at.year == 2030
    assert blocked.number == "4915199999"
    assert "calls_per_minute" in text(operator_client.get(blocked.get_absolute_url()))


@pytest.mark.django_db
def test_a_phone_secret_is_neither_shown_nor_exported(operator_client, portal_objects):
    assert "s3cret-digest" not in text(operator_client.get(portal_objects.phone.get_absolute_url()))
    export = operator_client.get(reverse("switching:phone_list"), {"export": "csv"})
    content = b"".join(export.streaming_content).decode()
    assert "s3cret-digest" not in content and "password" not in content.splitlines()[0]


@pytest.mark.django_db
def test_the_export_holds_the_filtered_rows_only(operator_client, portal_objects):
    export = operator_client.get(reverse("billing:account_list"), {"account_type": "vendor", "export": "csv"})
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,name,account_type,balance")
    assert len(lines) == 2 and "Carrier One clearing" in lines[1]


@pytest.mark.django_db
def test_an_invalid_filter_shows_no_rows_and_exports_nothing(operator_client, portal_objects):
    response = operator_client.get(reverse("billing:cdr_list"), {"caller_ip": "not-an-ip"})
    assert response.status_code == 200
    assert "Some filters are not valid" in text(response)
    assert len(response.context["table"].rows) == 0
    export = operator_client.get(reverse("billing:cdr_list"), {"caller_ip": "not-an-ip", "export": "csv"})
    assert not export.streaming
    assert export["Content-Type"].startswith("text/html")


def detail_views():
    """Every detail view the portal routes to, with the model it shows."""
    found = []
    for namespace in ("billing", "switching", "security"):
        resolver = get_resolver().namespace_dict[namespace][1]
        for pattern in resolver.url_patterns:
            view_class = getattr(pattern.callback, "view_class", None) if isinstance(pattern, URLPattern) else None
            if view_class and issubclass(view_class, ObjectView):
                found.append(pytest.param(view_class, id=view_class.__name__))
    return found


@pytest.mark.parametrize("view_class", detail_views())
def test_a_detail_page_shows_every_field_of_its_model(view_class):
    shown = {name for _, names in view_class().get_fieldsets() for name in names}
    missing = {f.name for f in model_fields(view_class.queryset.model)} - shown
    assert not missing, f"{view_class.__name__} leaves out {sorted(missing)}"


MODELS = [
    Account,
    Payment,
    RateTable,
    Rate,
    MappingGateway,
    RoutingGateway,
    Phone,
    NumberTransformRule,
    RoutingSchedule,
    CallerNumberPool,
    SystemParameter,
    BlackWhiteListGroup,
    ListEntry,
    DynamicBlacklistEntry,
    IpCountryRange,
    Alarm,
]


def test_every_model_has_its_pages_declared_here():
    from billing.models import CDR

    assert {p.model for p in PAGES} == {*MODELS, CDR}


@pytest.mark.django_db
def test_the_rate_import_page_reports_bad_rows_and_imports_good_files(operator_client, portal_objects):
    from django.core.files.uploadedfile import SimpleUploadedFile

    table = portal_objects.retail
    assert "Import CSV" in text(operator_client.get(table.get_absolute_url()))
    url = reverse("billing:ratetable_import", args=[table.pk])

    bad = SimpleUploadedFile("deck.csv", b"prefix,price_per_minute,first_period\n44,0.05,60\n33,-1,0\n")
    response = operator_client.post(url, {"file": bad})
    page = text(response)
    assert response.status_code == 200 and "Nothing was imported: 2 problems" in page
    assert [(e.row, e.column) for e in response.context["errors"]] == [(3, "price_per_minute"), (3, "first_period")]
    assert not Rate.objects.filter(rate_table=table, prefix="44").exists()

    good = SimpleUploadedFile(
        "deck.csv", "\ufeffprefix,area,price_per_minute\n44,Royaume-Uni,0.05\n4930,Berlin,0.02\n".encode()
    )
    response = operator_client.post(url, {"file": good}, follow=True)
    assert "Imported 2 rates into Retail deck: 1 new, 1 replaced." in text(response)
    assert Rate.objects.get(rate_table=table, prefix="4930").price_per_minute == Decimal("0.02")

    latin1 = SimpleUploadedFile("deck.csv", "prefix,area,price_per_minute\n33,Côte,0.05\n".encode("latin-1"))
    assert "not UTF-8" in text(operator_client.post(url, {"file": latin1}))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"sort": "no_such_column"},
        {"page": "abc"},
        {"page": "999"},
        {"per_page": "-5"},
        {"per_page": "100000"},
        {"sort": "-account", "per_page": "1", "page": "2"},
    ],
    ids=str,
)
def test_list_pages_survive_odd_query_strings(operator_client, portal_objects, query):
    for name in ("billing:account_list", "billing:cdr_list", "switching:systemparameter_list"):
        response = operator_client.get(reverse(name), query)
        assert response.status_code == 200
        assert response.context["table"].page_info["per_page"] <= 1000


@pytest.mark.django_db
def test_an_account_page_links_to_its_balance_history_and_its_cdrs(operator_client, portal_objects):
    customer = portal_objects.customer
    page = text(operator_client.get(customer.get_absolute_url()))
    history = f"{reverse('billing:balance_history')}?account={customer.pk}"
    cdrs = f"{reverse('billing:cdr_list')}?account={customer.pk}"
    assert history in page and cdrs in page
    # Both lead to that account's own figures.
    assert customer.name in text(operator_client.get(history))
    assert operator_client.get(cdrs).context["filterset"].form.cleaned_data["account"] == customer
