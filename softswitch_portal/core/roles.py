"""The operators' roles: groups of model permissions, and the permissions for what moves money or trust.

Each role grants an action (view, add, change, delete) on whole apps or on
named models. The trust permissions are separate, so no role gets them by
holding change on the model: only administrators hold them.

``sync_roles()`` is idempotent: the core migration runs it on a fresh
database, and ``manage.py sync_roles`` after a new model adds its permissions
to the roles (it also takes back a permission a role no longer lists).
"""

from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

# (app_label, model, codename, name): declared here rather than on the models, as they cut across apps.
TRUST_PERMISSIONS = (
    ("billing", "account", "change_credit_limit", "Can change an account's credit limit"),
    ("billing", "payment", "add_large_payment", "Can add a payment above SS_PAYMENT_APPROVAL_AMOUNT"),
    (
        "switching",
        "mappinggateway",
        "authorize_wide_network",
        "Can let a mapping gateway in from a network wider than /24 (IPv4) or /48 (IPv6)",
    ),
)
CREDIT_LIMIT = "billing.change_credit_limit"
LARGE_PAYMENT = "billing.add_large_payment"
WIDE_NETWORK = "switching.authorize_wide_network"

PORTAL_APPS = ("billing", "security", "switching", "core", "live")
WRITE = ("add", "change", "delete")

# role: ((actions, apps or "app.model" labels), ...); "trust" is the three permissions above.
ROLES = {
    "NOC": ((("view",), PORTAL_APPS),),
    "Billing clerk": (
        (("view",), PORTAL_APPS),
        (WRITE, ("billing.account", "billing.payment", "billing.ratetable", "billing.rate", "billing.reratejob")),
    ),
    "Switching engineer": (
        (("view",), PORTAL_APPS),
        (WRITE, ("switching", "core.systemparameter")),
        # End a live call now (forced disconnect); the NOC only watches.
        (("disconnect",), ("live.livecall",)),
    ),
    "Security reviewer": (
        (("view",), (*PORTAL_APPS, "auditlog", "axes")),
        (WRITE, ("security",)),
        (("disconnect",), ("live.livecall",)),
        # Confirm, release, or release and exempt what the anti-fraud rules blocked (the review queue).
        (("review",), ("security.dynamicblacklistentry",)),
        (("delete",), ("axes.accessattempt",)),
    ),
    "Administrator": (
        (("view", *WRITE), (*PORTAL_APPS, "auditlog", "axes", "auth")),
        (("review",), ("security.dynamicblacklistentry",)),
        (("disconnect",), ("live.livecall",)),
        (("trust",), ()),
    ),
}


def _matches(permission, actions, targets):
    app_label = permission.content_type.app_label
    model = permission.content_type.model
    action = permission.codename.split("_", 1)[0]
    if action not in actions or permission.codename != f"{action}_{model}":
        return False
    return any(target in (app_label, f"{app_label}.{model}") for target in targets)


def ensure_trust_permissions():
    permissions = []
    for app_label, model, codename, name in TRUST_PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        permission, _ = Permission.objects.update_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        permissions.append(permission)
    return permissions


def sync_roles(using="default"):
    from django.apps import apps

    # On a fresh database the model permissions do not exist yet: Django creates them after all migrations.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    trust = ensure_trust_permissions()
    every = list(Permission.objects.select_related("content_type"))
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        chosen = set()
        for actions, targets in grants:
            if "trust" in actions:
                chosen.update(trust)
                continue
            chosen.update(p for p in every if _matches(p, actions, targets))
        group.permissions.set(chosen)
