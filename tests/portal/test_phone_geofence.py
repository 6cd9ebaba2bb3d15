"""A phone's allowed countries need the IP-country table: without it the portal refuses them and says why."""

import html

import pytest
from django.urls import reverse

from security.models import IpCountryTable
from softswitch_portal.switching.models import Phone

pytestmark = pytest.mark.django_db


def phone_form(portal_objects, **changes):
    return {
        "username": "4930777",
        "password": "long-enough-secret",
        "account": portal_objects.customer.pk,
        "enabled": "on",
        "capacity": "1",
        "allowed_countries": "nl",
        **changes,
    }


def test_countries_are_refused_beside_the_field_while_no_table_is_imported(operator_client, portal_objects):
    IpCountryTable.objects.all().delete()

    response = operator_client.post(reverse("switching:phone_add"), phone_form(portal_objects))

    assert response.status_code == 200
    [error] = response.context["form"].errors["allowed_countries"]
    assert "No IP-country data has been imported" in error and "manage.py import_ip_countries" in error
    assert not Phone.objects.filter(username="4930777").exists()


def test_a_phone_without_countries_needs_no_table(operator_client, portal_objects):
    IpCountryTable.objects.all().delete()

    response = operator_client.post(reverse("switching:phone_add"), phone_form(portal_objects, allowed_countries=""))

    assert response.status_code == 302
    assert Phone.objects.get(username="4930777").allowed_countries == []


def test_countries_are_saved_once_a_table_is_imported(operator_client, portal_objects):
    response = operator_client.post(reverse("switching:phone_add"), phone_form(portal_objects))

    assert response.status_code == 302
    assert Phone.objects.get(username="4930777").allowed_countries == ["NL"]


def test_the_phone_pages_say_what_the_geofence_has_to_go_on(operator_client, portal_objects):
    phone = portal_objects.phone
    detail = html.unescape(operator_client.get(phone.get_absolute_url()).content.decode())
    form = html.unescape(operator_client.get(reverse("switching:phone_edit", args=[phone.pk])).content.decode())
    for page in (detail, form):
        assert "6 ranges (4 IPv4, 2 IPv6) in 3 countries" in page
        assert "delegated-test-extended.txt" in page

    IpCountryTable.objects.all().delete()
    detail = html.unescape(operator_client.get(phone.get_absolute_url()).content.decode())
    assert "No IP-country data imported" in detail
