"""Login lockout: SS_MAX_LOGIN_FAILED wrong passwords lock a user out of the portal and the admin for
SS_LOGIN_LOCK_TIME minutes, read from the system parameters at each attempt; lockouts are listed and released."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.urls import reverse

from softswitch_portal.core.models import LoginEvent, SystemParameter

PASSWORD = "correct-horse-battery-42"


@pytest.fixture
def clerk(django_user_model):
    return django_user_model.objects.create_user("clerk", password=PASSWORD, is_staff=True)


def log_in(client, password, username="clerk", url="login"):
    return client.post(reverse(url), {"username": username, "password": password})


def logged_in(response):
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def set_parameter(name, value):
    SystemParameter.objects.update_or_create(name=name, defaults={"value": str(value)})


def move_time_past_the_lock(minutes):
    """The lock counts from the last failure: age every recorded failure past it, as if the minutes went by."""
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - dt.timedelta(minutes=minutes, seconds=1)
        )


@pytest.mark.django_db
def test_a_user_is_locked_out_after_the_parameters_failures_and_let_in_after_the_lock_time(client, clerk):
    set_parameter("SS_MAX_LOGIN_FAILED", 3)
    set_parameter("SS_LOGIN_LOCK_TIME", 2)

    for _ in range(2):
        assert log_in(client, "wrong-password").status_code == 200
    # Two failures of three: the right password still works, and resets the count.
    assert logged_in(log_in(client, PASSWORD))
    client.logout()

    for _ in range(3):
        log_in(client, "wrong-password")
    refused = log_in(client, PASSWORD)
    assert refused.status_code == 429
    assert b"Too many failed logins" in refused.content
    assert "_auth_user_id" not in client.session

    move_time_past_the_lock(1)
    # A minute of two: still locked, and this attempt, too, counts from now.
    assert log_in(client, PASSWORD).status_code == 429
    move_time_past_the_lock(2)
    assert logged_in(log_in(client, PASSWORD))


@pytest.mark.django_db
def test_the_limit_is_read_at_each_attempt(client, clerk):
    set_parameter("SS_MAX_LOGIN_FAILED", 5)
    for _ in range(2):
        log_in(client, "wrong-password")
    # The operator lowers the limit: the next failure is already one too many.
    set_parameter("SS_MAX_LOGIN_FAILED", 2)
    assert log_in(client, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_admin_login_is_locked_too(client, clerk):
    set_parameter("SS_MAX_LOGIN_FAILED", 2)
    for _ in range(2):
        log_in(client, "wrong-password", url="admin:login")
    assert log_in(client, PASSWORD, url="admin:login").status_code == 429
    # One count for both doors: the portal's login is closed as well.
    assert log_in(client, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_logins_failures_and_lockouts_are_recorded(client, clerk):
    set_parameter("SS_MAX_LOGIN_FAILED", 3)
    log_in(client, PASSWORD)
    client.logout()
    log_in(client, "wrong-password")
    log_in(client, "wrong-password", username="nobody")
    # The address's third failure locks it out, whichever usernames it tried.
    log_in(client, "wrong-password")
    log_in(client, PASSWORD)
    outcomes = list(LoginEvent.objects.order_by("time", "pk").values_list("username", "outcome"))
    assert outcomes == [
        ("clerk", "success"),
        ("clerk", "logout"),
        ("clerk", "failed"),
        ("nobody", "failed"),
        ("clerk", "locked_out"),
        ("clerk", "locked_out"),
    ]
    assert LoginEvent.objects.filter(user=clerk, outcome="success").get().ip_address == "127.0.0.1"


@pytest.mark.django_db
def test_lockouts_are_listed_and_released_only_with_the_permission(client, clerk, django_user_model):
    set_parameter("SS_MAX_LOGIN_FAILED", 2)
    for _ in range(2):
        log_in(client, "wrong-password")
    attempt = AccessAttempt.objects.get(username="clerk")

    noc = django_user_model.objects.create_user("noc-operator", password=PASSWORD)
    noc.groups.add(Group.objects.get(name="NOC"))
    reviewer = django_user_model.objects.create_user("reviewer", password=PASSWORD)
    reviewer.groups.add(Group.objects.get(name="Security reviewer"))

    client.force_login(noc)
    assert client.get(reverse("axes:accessattempt_list")).status_code == 403
    assert client.post(reverse("axes:accessattempt_delete", args=[attempt.pk])).status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()

    client.force_login(reviewer)
    page = client.get(reverse("axes:accessattempt_list"))
    assert page.status_code == 200
    assert b"clerk" in page.content and b"Locked until" in page.content
    assert client.post(reverse("axes:accessattempt_delete", args=[attempt.pk])).status_code == 302
    client.logout()

    assert logged_in(log_in(client, PASSWORD))
