"""Safe defaults and bad input: the production settings pass the deploy check with nothing set but SECRET_KEY,
the published key is refused, the portal runs no inline script, demo data needs its flag, passwords are checked,
every CSV cell the portal writes is formula-safe, rate decks are capped, and SIP-derived text is cleaned at ingest."""

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing.ingest.records import parse
from billing.models import Rate, RateTable, RerateChange, RerateJob
from softswitch_portal.generic.export import stream_csv
from tests.billing.streams import call_record

ROOT = Path(__file__).resolve().parents[2]
# What the environment may say about security: each test of the defaults starts from none of it.
SECURITY_VARIABLES = (
    # Set by the browser tests' fixtures (Playwright's loop beside the ORM), never in production.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DEBUG",
    "SECRET_KEY",
    "DJANGO_SETTINGS_MODULE",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "ALLOWED_HOSTS",
)


def production_process(*args, **env):
    """Run manage.py in a process of its own with the environment's security settings unset (but DB_*, REDIS_*)."""
    clean = {key: value for key, value in os.environ.items() if key not in SECURITY_VARIABLES}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_the_deploy_check_is_clean_with_nothing_set_but_the_secret_key():
    # The whole deploy check, the API schema's included: any warning fails it.
    result = production_process("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_debug_the_published_secret_key_stops_the_process():
    result = production_process("check")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "ImproperlyConfigured" in result.stderr


SHOW_SETTINGS = """
import json
from django.conf import settings
names = ("DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_AGE", "SECURE_PROXY_SSL_HEADER")
print(json.dumps({name: getattr(settings, name) for name in names}))
"""


def production_settings(**env):
    result = production_process("shell", "-c", SHOW_SETTINGS, SECRET_KEY=secrets.token_urlsafe(50), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_debug_is_off_and_the_portal_secure_unless_the_environment_says_otherwise():
    values = production_settings()
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SESSION_COOKIE_AGE"] == 8 * 3600

    # Behind a TLS-terminating proxy that redirects by itself, the operator says so.
    behind_proxy = production_settings(SECURE_SSL_REDIRECT="0", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    assert behind_proxy["SECURE_SSL_REDIRECT"] is False
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_a_malformed_proxy_header_stops_the_process_naming_it():
    result = production_process(
        "check", SECRET_KEY=secrets.token_urlsafe(50), SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"
    )
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_scripts(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("csp", "csp@example.com", "x-Secret-123456"))
    policy = client.get(reverse("home"))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe-inline" not in policy
    assert "Content-Security-Policy" in client.get(reverse("login"))


def test_no_template_has_an_inline_script_style_or_event_handler():
    # Each would be blocked by the Content-Security-Policy: behaviour and looks come from static files.
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=\"|\son[a-z]+=\"", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in (ROOT / "templates").rglob("*.html")
        for match in inline.finditer(re.sub(r"\{#.*?#\}", "", path.read_text()))
    ]
    assert not found, "blocked by the Content-Security-Policy: " + "; ".join(found)


@pytest.mark.django_db
def test_the_demo_data_needs_its_flag(monkeypatch):
    with pytest.raises(CommandError, match="--demo"):
        call_command("seed_demo")
    monkeypatch.setenv("SS_ADMIN_PASSWORD", "password")
    with pytest.raises(CommandError, match="SS_ADMIN_PASSWORD"):
        call_command("seed_demo", "--demo")


def test_passwords_are_checked_by_the_validators():
    for weak in ("admin", "password123456", "123456789012", "short-9"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("amber-trunk-route-71")


def streamed(response):
    return b"".join(response.streaming_content).decode()


def test_every_text_cell_of_a_streamed_csv_is_formula_safe():
    # Raw cells, as the re-rating export writes them: numbers from SIP packets and names from operators.
    rows = [['=HYPERLINK("http://x")', "+4930123", "-12.50", "@SUM(A1)", "\tcmd", "\rcmd", "ok", 5]]
    body = streamed(stream_csv("x.csv", ["=header", "b", "c", "d", "e", "f", "g", "h"], rows))
    header, line = body.splitlines()[0], body.split("\r\n")[1]
    assert header.startswith("'=header,")
    assert line.startswith('"\'=HYPERLINK(""http://x"")",+4930123,-12.50,\'@SUM(A1),\'\tcmd,"\'\rcmd",ok,5')


@pytest.mark.django_db
def test_the_rerating_export_is_formula_safe(operator_client, operator):
    now = timezone.now()
    job = RerateJob.objects.create(
        created_by=operator,
        rate_table=RateTable.objects.create(name="Fixed deck"),
        start=now - dt.timedelta(days=1),
        end=now,
        status="finished",
    )
    RerateChange.objects.create(
        job=job,
        cdr_id=1,
        start_time=now,
        call_uuid="c1",
        callee_number="=cmd|' /C calc'!A0",
        old_fee=0,
        new_fee=0,
        old_vendor_cost=0,
        new_vendor_cost=0,
    )
    body = streamed(operator_client.get(reverse("billing:reratejob", args=[job.pk]), {"export": "csv"}))
    assert "'=cmd" in body
    assert ",=cmd" not in body


@pytest.fixture
def deck(db):
    return RateTable.objects.create(name="Upload target")


def upload(client, table, content, name="deck.csv"):
    return client.post(
        reverse("billing:ratetable_import", args=[table.pk]), {"file": SimpleUploadedFile(name, content)}
    )


@pytest.mark.django_db
def test_a_rate_deck_the_csv_reader_cannot_read_is_a_form_error(operator_client, deck):
    # A cell longer than the csv module's field limit, as a broken export or a hostile file has.
    response = upload(operator_client, deck, b'prefix,price_per_minute\n44,0.01\n49,"' + b"9" * 200_000 + b'"\n')
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert any("Not readable as CSV (line 3)" in error for error in errors), errors
    assert not Rate.objects.filter(rate_table=deck).exists()


@pytest.mark.django_db
def test_a_rate_deck_with_too_many_rows_is_a_form_error(operator_client, deck, settings):
    settings.RATE_IMPORT_MAX_ROWS = 3
    rows = "".join(f"{prefix},0.01\n" for prefix in range(41, 45))
    response = upload(operator_client, deck, f"prefix,price_per_minute\n{rows}".encode())
    assert "RATE_IMPORT_MAX_ROWS" in " ".join(response.context["form"].errors["file"])
    assert not Rate.objects.filter(rate_table=deck).exists()
    rows = "".join(f"{prefix},0.01\n" for prefix in range(41, 44))
    assert upload(operator_client, deck, f"prefix,price_per_minute\n{rows}".encode()).status_code == 302


@pytest.mark.django_db
def test_a_rate_deck_over_the_size_limit_is_a_form_error(operator_client, deck, settings):
    settings.RATE_IMPORT_MAX_BYTES = 64
    content = b"prefix,price_per_minute\n" + b"".join(b"%d,0.01\n" % prefix for prefix in range(100, 120))
    response = upload(operator_client, deck, content)
    assert "RATE_IMPORT_MAX_BYTES" in " ".join(response.context["form"].errors["file"])
    assert not Rate.objects.filter(rate_table=deck).exists()


def test_control_and_bidirectional_characters_are_stripped_from_sip_text_at_ingest():
    record = call_record(
        "call-1",
        1_700_000_000_000,
        caller_user_agent="Softphone\u202e1.0\x1b[31m\r\nInjected: yes\u200b\u2066",
        caller_number="49301\u202e23",
    )
    values = parse("1-0", json.dumps(record)).values
    assert values["caller_user_agent"] == "Softphone1.0[31mInjected: yes"
    assert values["caller_number"] == "4930123"
    # Letters of any script stay.
    record = call_record("call-2", 1_700_000_000_000, caller_user_agent="Téléphone 电话 ☎")
    assert parse("1-1", json.dumps(record)).values["caller_user_agent"] == "Téléphone 电话 ☎"
