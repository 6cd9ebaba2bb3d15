"""Phones' secrets as HA1 only: hashed in the database, write-only in forms, API and admin; weak ones refused."""

import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from callcore import contract
from softswitch_portal.switching.forms import PhoneForm
from softswitch_portal.switching.models import Phone, validate_phone_password

pytestmark = pytest.mark.django_db

SECRET = "Correct-Horse-77"


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def form_data(customer, **changes):
    return {"username": "4930555", "password": SECRET, "account": customer.pk, "enabled": "on", "capacity": "1",
            **changes}  # fmt: skip


def test_only_the_hashes_are_in_the_database(customer):
    phone = Phone.objects.create(username="4930555", password=SECRET, account=customer)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM switching_phone WHERE id = %s", [phone.pk])
        columns = [c.name for c in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
    assert "password" not in columns
    assert SECRET not in repr(row)
    assert row["ha1"] == md5(f"4930555:{contract.SIP_REALM}:{SECRET}")
    assert row["ha1b"] == md5(f"4930555@{contract.SIP_REALM}:{contract.SIP_REALM}:{SECRET}")
    assert row["digest_realm"] == contract.SIP_REALM
    assert Phone.objects.get(pk=phone.pk).password == ""  # nothing to read back


def test_the_hashes_follow_the_username_saved(customer):
    phone = Phone(password=SECRET, account=customer)  # the password before the username, as a form may set them
    phone.username = "4930556"
    phone.save()
    assert phone.ha1 == contract.digest_ha1("4930556", contract.SIP_REALM, SECRET)


@pytest.mark.parametrize(
    "password, why",
    [
        ("Sh0rt-pw", "10 characters"),
        ("4930555123456", "more than digits"),
        ("x-4930555-secret", "username"),
        ("aaaaaaaaaaaa", "5 different characters"),
        ("qwertyuiop", "common passwords"),
        ("password123", "common passwords"),
    ],
)
def test_a_password_a_guessing_run_finds_is_refused(customer, password, why):
    with pytest.raises(ValidationError, match=why):
        validate_phone_password(password, "4930555")
    # The model refuses it whoever sets it, and the form shows why beside the field.
    with pytest.raises(ValidationError) as refused:
        Phone(username="4930555", password=password, account=customer).full_clean()
    assert any(why in message for message in refused.value.message_dict["password"])
    form = PhoneForm(data=form_data(customer, password=password))
    assert not form.is_valid()
    assert any(why in message for message in form.errors["password"])


def test_the_form_never_renders_the_secret_and_blank_keeps_it(admin_client, customer):
    response = admin_client.post(reverse("switching:phone_add"), form_data(customer))
    assert response.status_code == 302, response.content.decode()[-2000:]
    phone = Phone.objects.get(username="4930555")
    kept = phone.ha1
    for url in (reverse("switching:phone_edit", args=[phone.pk]), phone.get_absolute_url()):
        page = admin_client.get(url).content.decode()
        assert SECRET not in page and phone.ha1 not in page and phone.ha1b not in page
    edit = admin_client.get(reverse("switching:phone_edit", args=[phone.pk])).content.decode()
    assert "leave blank to keep" in edit

    response = admin_client.post(reverse("switching:phone_edit", args=[phone.pk]),
                                 form_data(customer, password="", capacity="2"))  # fmt: skip
    assert response.status_code == 302
    phone.refresh_from_db()
    assert (phone.capacity, phone.ha1) == (2, kept)

    response = admin_client.post(reverse("switching:phone_edit", args=[phone.pk]),
                                 form_data(customer, password="An0ther-Secret!"))  # fmt: skip
    assert response.status_code == 302
    phone.refresh_from_db()
    assert phone.ha1 == contract.digest_ha1("4930555", contract.SIP_REALM, "An0ther-Secret!")


def test_a_new_phone_needs_a_password_and_a_new_username_needs_it_again(admin_client, customer):
    response = admin_client.post(reverse("switching:phone_add"), form_data(customer, password=""))
    assert response.status_code == 200
    assert response.context["form"].errors["password"]

    phone = Phone.objects.create(username="4930555", password=SECRET, account=customer)
    response = admin_client.post(reverse("switching:phone_edit", args=[phone.pk]),
                                 form_data(customer, username="4930999", password=""))  # fmt: skip
    assert response.status_code == 200
    assert "hash includes the username" in response.context["form"].errors["password"][0]


def test_the_admin_is_write_only_and_refuses_a_weak_password(admin_client, customer):
    data = {**form_data(customer), "allowed_networks": "", "allowed_countries": "", "description": ""}
    add = reverse("admin:switching_phone_add")
    refused = admin_client.post(add, {**data, "password": "1234567890"})
    assert refused.status_code == 200 and "more than digits" in refused.content.decode()
    assert admin_client.post(add, data).status_code == 302
    phone = Phone.objects.get(username="4930555")
    page = admin_client.get(reverse("admin:switching_phone_change", args=[phone.pk])).content.decode()
    assert phone.ha1 not in page and SECRET not in page
    assert "leave blank to keep" in page


def test_the_api_takes_a_password_and_never_gives_back_a_secret(admin_client, customer):
    created = admin_client.post(
        "/api/switching/phones/", form_data(customer, enabled=True), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert "password" not in body and "ha1" not in body and "ha1b" not in body
    weak = admin_client.post("/api/switching/phones/", form_data(customer, username="4930556", password="4930556000"),
                             content_type="application/json")  # fmt: skip
    assert weak.status_code == 400 and "password" in weak.json()


@pytest.mark.django_db(transaction=True)
def test_the_migration_hashes_the_passwords_of_existing_phones(customer):
    executor = MigrationExecutor(connection)
    before, after = (
        [("switching", "0004_mappinggateway_require_caller_number")],
        [("switching", "0005_phone_digest_ha1")],
    )
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldPhone = old_apps.get_model("switching", "Phone")  # noqa: N806 - a model class, as of the migration before
    OldPhone.objects.create(username="4930555", password="legacy-secret-1", account_id=customer.pk, capacity=1)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    new_apps = executor.loader.project_state(after).apps
    phone = new_apps.get_model("switching", "Phone").objects.get(username="4930555")
    assert phone.ha1 == md5(f"4930555:{contract.SIP_REALM}:legacy-secret-1")
    assert phone.ha1b == md5(f"4930555@{contract.SIP_REALM}:{contract.SIP_REALM}:legacy-secret-1")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
