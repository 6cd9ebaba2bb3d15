"""The dynamic blacklist's review actions and the alarms' acknowledgement as API endpoints, on the pages' services."""

import pytest
from django.contrib.auth.models import Permission

from security.models import Alarm, DynamicBlacklistEntry, IpCountryRange

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(db):
    return [
        DynamicBlacklistEntry.objects.create(number=number, reason="short-call burst", status="awaiting_review")
        for number in ("4930111", "4930222", "4930333")
    ]


def test_an_entry_is_confirmed_or_released_through_the_review_endpoint(api, entries):
    first, second, _ = entries
    confirmed = api.post(f"/api/security/dynamic-blacklist/{first.pk}/review/",
                         {"action": "confirm", "permanent": True, "note": "known fraud"}, format="json")  # fmt: skip
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json() == {"done": [first.pk], "skipped": {}}
    first.refresh_from_db()
    assert first.status == "confirmed" and first.expires_at is None and first.review_note == "known fraud"
    released = api.post("/api/security/dynamic-blacklist/review/",
                        {"action": "release", "entries": [first.pk, second.pk]}, format="json")  # fmt: skip
    assert released.status_code == 200 and sorted(released.json()["done"]) == sorted([first.pk, second.pk])
    assert set(DynamicBlacklistEntry.objects.filter(status="released").values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_a_review_missing_its_option_is_a_400_naming_it(api, entries):
    response = api.post(
        f"/api/security/dynamic-blacklist/{entries[0].pk}/review/", {"action": "confirm"}, format="json"
    )
    assert response.status_code == 400 and "hours" in response.json()
    exempt = api.post(f"/api/security/dynamic-blacklist/{entries[0].pk}/review/", {"action": "release_exempt"},
                      format="json")  # fmt: skip
    assert exempt.status_code == 400 and "days" in exempt.json()


def test_reviewing_needs_the_review_permission(make_client, with_token, django_user_model, entries):
    clerk = django_user_model.objects.create_user("clerk", password="not-a-real-secret-46")
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_dynamicblacklistentry",
                                                                        "change_dynamicblacklistentry"]))  # fmt: skip
    _, token = make_client(owner=clerk, scopes=["read", "write"])
    response = with_token(token).post(f"/api/security/dynamic-blacklist/{entries[0].pk}/review/",
                                      {"action": "release"}, format="json")  # fmt: skip
    assert response.status_code == 403
    assert DynamicBlacklistEntry.objects.get(pk=entries[0].pk).status == "awaiting_review"


def test_entries_and_alarms_are_not_created_or_edited_through_the_api(api, entries):
    assert api.post("/api/security/dynamic-blacklist/", {"number": "1"}, format="json").status_code == 405
    assert api.patch(f"/api/security/dynamic-blacklist/{entries[0].pk}/", {"status": "released"}).status_code == 405
    assert api.post("/api/security/alarms/", {"kind": "asr_drop"}, format="json").status_code == 405


def test_an_alarm_is_acknowledged_then_closed(api, operator):
    alarm = Alarm.objects.create(kind="asr_drop", severity="warning", subject_kind="routing_gateway", subject="7",
                                 dedupe_key="asr_drop:7")  # fmt: skip
    listed = api.get("/api/security/alarms/", {"severity": "warning"}).json()["results"]
    assert [row["id"] for row in listed] == [alarm.pk]
    assert api.post(f"/api/security/alarms/{alarm.pk}/acknowledge/").json() == {"changed": 1}
    assert api.post(f"/api/security/alarms/{alarm.pk}/acknowledge/").json() == {"changed": 0}
    alarm.refresh_from_db()
    assert alarm.acknowledged_by == operator and alarm.resolved_at is None
    assert api.post(f"/api/security/alarms/{alarm.pk}/close/").json() == {"changed": 1}
    alarm.refresh_from_db()
    assert alarm.resolved_at is not None


def test_an_ip_country_range_is_added_listed_and_a_bad_one_refused_naming_its_field(api):
    created = api.post("/api/security/ip-country-ranges/", {"start_ip": "198.51.100.0", "count": 256,
                       "country": "FR", "memo": "a customer's office"}, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    listed = api.get("/api/security/ip-country-ranges/", {"country": "FR"}).json()
    assert [r["start_ip"] for r in listed["results"]] == ["198.51.100.0"]
    overlapping = api.post("/api/security/ip-country-ranges/", {"start_ip": "198.51.100.10", "count": 1,
                           "country": "DE"}, format="json")  # fmt: skip
    assert overlapping.status_code == 400, overlapping.content
    assert IpCountryRange.objects.count() == 1
