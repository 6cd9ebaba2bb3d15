"""The audit trail: which models' changes are recorded, and the record of logins.

Every change to configuration, money and blacklists is kept by django-auditlog
(one LogEntry per change: who, when, each changed field before and after);
logins, failed logins and lockouts by the receivers below.
"""

from auditlog.registry import auditlog
from axes.signals import user_locked_out
from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import LoginEvent

AUDITED_MODELS = (
    # configuration
    "switching.MappingGateway",
    "switching.RoutingGateway",
    "switching.Phone",
    "switching.NumberTransformRule",
    "switching.RoutingSchedule",
    "switching.CallerNumberPool",
    "core.SystemParameter",
    # money
    "billing.Account",
    "billing.Payment",
    "billing.RateTable",
    "billing.Rate",
    "billing.RerateJob",
    # blacklists
    "security.BlackWhiteListGroup",
    "security.ListEntry",
    "security.DynamicBlacklistEntry",
    # who may do what
    "auth.User",
    "auth.Group",
)
# Never written to the log: secrets, and what changes on every login or call rather than by an operator's hand.
EXCLUDED_FIELDS = {
    "auth.User": ["password", "last_login"],
    "billing.RerateJob": ["done", "changed", "progress", "started", "finished", "error", "status"],
}
# Fields whose value is a secret: the log says it changed, never what to.
MASKED_FIELDS = {
    "switching.Phone": ["password", "ha1", "ha1b"],
}


def register_models():
    for label in AUDITED_MODELS:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        field_names = {field.name for field in model._meta.get_fields()}
        exclude = [name for name in EXCLUDED_FIELDS.get(label, ()) if name in field_names]
        mask = [name for name in MASKED_FIELDS.get(label, ()) if name in field_names]
        many_to_many = [field.name for field in model._meta.many_to_many]
        # The model's own columns: not the reverse relations, which say nothing of this object's change.
        include = [field.name for field in model._meta.concrete_fields if field.name not in exclude]
        auditlog.register(
            model,
            include_fields=include,
            exclude_fields=exclude,
            mask_fields=mask,
            mask_callable="softswitch_portal.core.audit.mask_secret",
            m2m_fields=many_to_many,
        )


def mask_secret(value):
    # django-auditlog's default keeps half of the value; a secret's log says only that it changed.
    return "********" if value not in (None, "", "None") else value


def _client(request):
    if request is None:
        return None, "", ""
    meta = request.META
    return meta.get("REMOTE_ADDR") or None, meta.get("HTTP_USER_AGENT", "")[:255], request.path[:255]


def record_login(outcome, username, user=None, request=None):
    ip_address, user_agent, path = _client(request)
    LoginEvent.objects.create(
        outcome=outcome,
        username=(username or "")[:150],
        user=user,
        ip_address=ip_address,
        user_agent=user_agent,
        path=path,
    )


@receiver(user_logged_in, dispatch_uid="core.audit.logged_in")
def _logged_in(sender, request, user, **kwargs):
    record_login(LoginEvent.Outcome.SUCCESS, user.get_username(), user, request)


@receiver(user_logged_out, dispatch_uid="core.audit.logged_out")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record_login(LoginEvent.Outcome.LOGOUT, user.get_username(), user, request)


@receiver(user_login_failed, dispatch_uid="core.audit.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # A locked-out attempt is recorded once, as a lockout, by the receiver below.
    if request is not None and getattr(request, "axes_locked_out", False):
        return
    record_login(LoginEvent.Outcome.FAILED, credentials.get("username", ""), None, request)


@receiver(user_locked_out, dispatch_uid="core.audit.locked_out")
def _locked_out(sender, request, username=None, ip_address=None, **kwargs):
    record_login(LoginEvent.Outcome.LOCKED_OUT, username or "", None, request)
