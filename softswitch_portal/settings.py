"""Settings, all from the environment with defaults that work on a developer machine.

The helpers fail loudly on a malformed value: a typo in production must stop
the process at start, not silently fall back to a default.
"""

import ipaddress
import os
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envstr(name, default):
    return os.environ.get(name, default)


def envint(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def envbool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


def envlist(name, default):
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


# Off unless asked for: a production process started with nothing set must not show tracebacks.
DEBUG = envbool("DEBUG", False)
# Published in the repository, so it signs nothing outside a developer machine.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = envstr("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is unset or the development key published in the repository: set SECRET_KEY to a long "
        "random value (production), or DEBUG=1 (a developer machine)"
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost")
# Origins (scheme://host[:port]) allowed to POST forms; needed when the portal is reached by another name or port.
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# Secure by default whenever DEBUG is off; an operator whose TLS proxy redirects turns SECURE_SSL_REDIRECT off.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
# Behind a TLS-terminating proxy: the header it sets and the value meaning HTTPS, e.g. "HTTP_X_FORWARDED_PROTO,https".
_proxy_ssl_header = envlist("SECURE_PROXY_SSL_HEADER", "")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
# A working day; an operator's forgotten browser does not stay logged in for Django's default two weeks.
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = envbool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "django_tables2",
    "axes",
    "auditlog",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "softswitch_portal.generic",
    "softswitch_portal.core",
    "softswitch_portal.switching",
    "billing",
    "security",
    "softswitch_portal.vos",
    "softswitch_portal.live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Records who made each audited change (django-auditlog reads the request's user).
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Every request to the REST and VOS APIs leaves a row: client, source IP, endpoint, status.
    "softswitch_portal.api.middleware.APIRequestLogMiddleware",
]

# Last, as django-axes asks: it turns a locked-out login into the lockout page.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# django-axes counts failed logins (portal and admin alike) before the usual check of the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# SS_MAX_LOGIN_FAILED and SS_LOGIN_LOCK_TIME, read from the system parameters at each login attempt.
AXES_FAILURE_LIMIT = "softswitch_portal.core.lockout.failure_limit"
AXES_COOLOFF_TIME = "softswitch_portal.core.lockout.cooloff_time"
# A username is locked wherever the guesses come from, and an address guessing many usernames is locked too.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy: how many proxies in front of the portal append to X-Forwarded-For (0: use the peer's address).
AXES_IPWARE_PROXY_COUNT = envint("AXES_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

# The audit trail compares and keeps typed values, so 250 and 250.0000 are one credit limit, not a change.
AUDITLOG_STORE_JSON_CHANGES = True

# The portal loads scripts and styles from its own static files only, so an injected <script> never runs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "softswitch_portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "softswitch_portal.generic.navigation.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "softswitch_portal.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": envstr("DB_NAME", "softswitch"),
        "USER": envstr("DB_USER", "postgres"),
        "PASSWORD": envstr("DB_PASSWORD", ""),
        "HOST": envstr("DB_HOST", "127.0.0.1"),
        "PORT": envint("DB_PORT", 5432),
        "CONN_MAX_AGE": envint("DB_CONN_MAX_AGE", 60),
    }
}

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
# Key prefix for everything the switch keeps in Redis; tests give each run its own.
REDIS_PREFIX = envstr("REDIS_PREFIX", "ss")
# The HMAC key of the configuration snapshot, shared with the call core (callcore.contract.signing); no
# default: without it nothing is published, as the call cores refuse an unsigned snapshot.
SNAPSHOT_SIGNING_KEY = envstr("SNAPSHOT_SIGNING_KEY", "")

# Who may scrape /metrics without a login (softswitch_portal.core.metrics): comma-separated networks.
METRICS_ALLOWED_NETWORKS = envlist("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network") from None
# Prometheus scrapes the portal's own port over plain HTTP from the host: no redirect to HTTPS for it.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]

# Checked wherever a password is set (the admin, createsuperuser, changepassword, seed_demo's SS_ADMIN_PASSWORD);
# only the demo's own admin/admin is exempt.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "static_root"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

DJANGO_TABLES2_TEMPLATE = "generic/table.html"
PAGINATE_BY = envint("PAGINATE_BY", 50)
# A rate-deck upload is read whole and every row checked in memory: these bound what one upload may cost.
RATE_IMPORT_MAX_BYTES = envint("RATE_IMPORT_MAX_BYTES", 20 * 1024 * 1024)
RATE_IMPORT_MAX_ROWS = envint("RATE_IMPORT_MAX_ROWS", 200_000)

REST_FRAMEWORK = {
    # API clients' hashed tokens (security.APIClient), and the portal's own session for its pages' scripts.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "softswitch_portal.api.authentication.APIClientAuthentication",
        "softswitch_portal.api.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["softswitch_portal.api.permissions.ScopedModelPermissions"],
    "DEFAULT_THROTTLE_CLASSES": ["softswitch_portal.api.throttling.APIClientThrottle"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "softswitch_portal.api.pagination.LimitOffsetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "softswitch_portal.api.exceptions.exception_handler",
    "PAGE_SIZE": envint("API_PAGE_SIZE", 100),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "softswitch API",
    "DESCRIPTION": "The portal's models, payments and CDRs. Send `Authorization: Token <key>` (an API client's "
    "token, made on the portal's API clients page); the VOS3000-compatible API is described apart, in the README.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs need a login or a token, as every other endpoint does.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI and Redoc from the project's own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "softswitch_portal.api.schema.local_times",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PaymentKindEnum": "billing.choices.PaymentKind",
        "ListKindEnum": "security.choices.ListKind",
        # Two choice sets share the field name subject_kind: each gets its own name.
        "BlacklistSubjectKindEnum": "security.choices.BlacklistSubject",
        "AlarmSubjectKindEnum": "security.choices.AlarmSubject",
        "TestCallStatusEnum": "softswitch_portal.switching.choices.TestCallStatus",
    },
}

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "softswitch@localhost")
# Where alarms are mailed when they concern no account with an alarm address (comma-separated; empty: every
# active staff user's e-mail), and where each mailed alarm is also POSTed as JSON (VOS3000's OUT_POST_URL; empty:
# off). security.alarms.
ALARM_EMAIL_TO = [address.strip() for address in envstr("ALARM_EMAIL_TO", "").split(",") if address.strip()]
ALARM_POST_URL = envstr("ALARM_POST_URL", "")
ALARM_POST_TIMEOUT = envint("ALARM_POST_TIMEOUT", 5)
# Operator test calls (switching.testcalls): the switch's SIP address they dial through, the local address the
# agent calls from (not one a mapping gateway claims, or the call is that gateway's), how long each talks, and the
# Celery queue one worker with --concurrency 1 serves, so calls queue (pjsua2 holds at most 4 calls a process).
TEST_CALL_SWITCH = envstr("TEST_CALL_SWITCH", "127.0.0.1:5060")
# 127.0.0.3: the demo's trunk claims 127.0.0.1, and a loopback host answers on every 127/8 address.
TEST_CALL_BIND = envstr("TEST_CALL_BIND", "127.0.0.3")
TEST_CALL_TALK_SECONDS = envint("TEST_CALL_TALK_SECONDS", 5)
TEST_CALL_QUEUE = envstr("TEST_CALL_QUEUE", "testcalls")
TEST_CALL_CREDIT_LIMIT = Decimal(envstr("TEST_CALL_CREDIT_LIMIT", "10"))  # the test account's credit when created

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
# The firewall export (security.firewall): the bans as nftables sets in this table; needs CAP_NET_ADMIN.
FIREWALL_EXPORT = envbool("FIREWALL_EXPORT", False)
FIREWALL_TABLE = envstr("FIREWALL_TABLE", "softswitch")

# Each periodic job expires before its next run, so a backlog never piles up.
CELERY_BEAT_SCHEDULE = {
    "ensure-cdr-partitions": {
        "task": "billing.tasks.ensure_cdr_partitions",
        "schedule": envint("BEAT_CDR_PARTITIONS_SECONDS", 3600),
        "options": {"expires": envint("BEAT_CDR_PARTITIONS_SECONDS", 3600) - 60},
    },
    "resync-dynamic-blacklist": {
        "task": "security.tasks.resync_dynamic_blacklist",
        "schedule": envint("BEAT_DYNBL_SECONDS", 300),
        "options": {"expires": envint("BEAT_DYNBL_SECONDS", 300) - 30},
    },
    # A detection is already enforced in Redis; this records it for the review queue and the alarms.
    "persist-fraud-events": {
        "task": "security.tasks.persist_fraud_events",
        "schedule": envint("BEAT_FRAUD_EVENTS_SECONDS", 5),
        "options": {"expires": envint("BEAT_FRAUD_EVENTS_SECONDS", 5)},
    },
    "expire-dynamic-blacklist": {
        "task": "security.tasks.expire_dynamic_blacklist",
        "schedule": envint("BEAT_DYNBL_EXPIRE_SECONDS", 60),
        "options": {"expires": envint("BEAT_DYNBL_EXPIRE_SECONDS", 60) // 2},
    },
    "republish-snapshot": {
        "task": "softswitch_portal.switching.tasks.republish_snapshot",
        "schedule": envint("BEAT_SNAPSHOT_SECONDS", 300),
        "options": {"expires": envint("BEAT_SNAPSHOT_SECONDS", 300) - 30},
    },
    # Well inside the published figures' expiry (billing.route_stats), so they never lapse while beat runs.
    "publish-route-asr": {
        "task": "billing.tasks.publish_route_asr",
        "schedule": envint("BEAT_ROUTE_ASR_SECONDS", 30),
        "options": {"expires": envint("BEAT_ROUTE_ASR_SECONDS", 30) // 2},
    },
    # The spend-velocity rule's base at set-up: each customer's average daily vendor cost (billing.fraud).
    "publish-fraud-daily-spend": {
        "task": "billing.tasks.publish_fraud_daily_spend",
        "schedule": envint("BEAT_FRAUD_DAILY_SPEND_SECONDS", 3600),
        "options": {"expires": envint("BEAT_FRAUD_DAILY_SPEND_SECONDS", 3600) - 60},
    },
    # A gone node's calls are recorded and released within this of billing.lost_calls.STALE_AFTER_S.
    "release-lost-calls": {
        "task": "billing.tasks.release_lost_calls",
        "schedule": envint("BEAT_LOST_CALLS_SECONDS", 15),
        "options": {"expires": envint("BEAT_LOST_CALLS_SECONDS", 15) // 2},
    },
    # Alarms (security.alarms): the live state's detectors often, as a node's silence is urgent; the CDR
    # detectors every minute; the hour-against-the-week comparisons, which read eight hours of CDRs, less often.
    "detect-live-alarms": {
        "task": "security.tasks.detect_live_alarms",
        "schedule": envint("BEAT_LIVE_ALARMS_SECONDS", 15),
        "options": {"expires": envint("BEAT_LIVE_ALARMS_SECONDS", 15) // 2},
    },
    "detect-cdr-alarms": {
        "task": "security.tasks.detect_cdr_alarms",
        "schedule": envint("BEAT_CDR_ALARMS_SECONDS", 60),
        "options": {"expires": envint("BEAT_CDR_ALARMS_SECONDS", 60) // 2},
    },
    "detect-baseline-alarms": {
        "task": "security.tasks.detect_baseline_alarms",
        "schedule": envint("BEAT_BASELINE_ALARMS_SECONDS", 300),
        "options": {"expires": envint("BEAT_BASELINE_ALARMS_SECONDS", 300) - 30},
    },
    # The call core's source-IP bans (security.bans): recorded for the ban page's history, and exported to the
    # nftables set (security.firewall) when FIREWALL_EXPORT is set; a ban already drops traffic on every node.
    "record-bans": {
        "task": "security.tasks.record_bans",
        "schedule": envint("BEAT_BANS_SECONDS", 10),
        "options": {"expires": envint("BEAT_BANS_SECONDS", 10)},
    },
    "export-firewall": {
        "task": "security.tasks.export_firewall",
        "schedule": envint("BEAT_FIREWALL_SECONDS", 5),
        "options": {"expires": envint("BEAT_FIREWALL_SECONDS", 5)},
    },
}

# Where callcore keeps its last good snapshot and its CDR spool.
CALLCORE_STATE_DIR = envstr("CALLCORE_STATE_DIR", str(BASE_DIR / "var"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}
