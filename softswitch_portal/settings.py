"""Settings, all from the environment with defaults that work on a developer machine.

The helpers fail loudly on a malformed value: a typo in production must stop
the process at start, not silently fall back to a default.
"""

import os
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


SECRET_KEY = envstr("SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
DEBUG = envbool("DEBUG", True)
ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "softswitch_portal.generic",
    "softswitch_portal.core",
    "softswitch_portal.switching",
    "billing",
    "security",
    "softswitch_portal.vos",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Every request to the REST and VOS APIs leaves a row: client, source IP, endpoint, status.
    "softswitch_portal.api.middleware.APIRequestLogMiddleware",
]

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
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
    # Swagger UI and Redoc from the project's own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {},
}

EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "softswitch@localhost")

CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
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
    # A gone node's calls are recorded and released within this of billing.lost_calls.STALE_AFTER_S.
    "release-lost-calls": {
        "task": "billing.tasks.release_lost_calls",
        "schedule": envint("BEAT_LOST_CALLS_SECONDS", 15),
        "options": {"expires": envint("BEAT_LOST_CALLS_SECONDS", 15) // 2},
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
