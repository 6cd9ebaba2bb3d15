"""Demo data for a first look at the switch; safe to run any number of times.

It creates a superuser with a known password (admin / admin unless
SS_ADMIN_USER / SS_ADMIN_PASSWORD say otherwise), so it refuses to run
without ``--demo``: `make run` passes it, a production setup never does.
"""

import os
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.choices import AccountType, PaymentKind
from billing.models import Account, Rate, RateTable
from billing.services import apply_payment
from security.choices import ListKind, MatchKind
from security.models import BlackWhiteListGroup, ListEntry
from softswitch_portal.switching.models import MappingGateway, NumberTransformRule, RoutingGateway

CUSTOMER_RATES = [
    # prefix, area, price per minute, first, next
    ("1", "USA/Canada", "0.0100", 6, 6),
    ("44", "United Kingdom", "0.0200", 1, 1),
    ("447", "United Kingdom mobile", "0.0600", 1, 1),
    ("86", "China", "0.0150", 60, 60),
    ("91", "India", "0.0250", 30, 6),
]
VENDOR_RATES = {
    "Vendor A cost": [("1", "USA/Canada", "0.0060"), ("44", "United Kingdom", "0.0120"), ("447", "UK mobile", "0.0400"),
                      ("86", "China", "0.0090"), ("91", "India", "0.0180")],
    "Vendor B cost": [("1", "USA/Canada", "0.0070"), ("44", "United Kingdom", "0.0110"), ("447", "UK mobile", "0.0380"),
                      ("86", "China", "0.0100"), ("91", "India", "0.0170")],
}  # fmt: skip


# Destinations no ordinary customer calls in bursts, each the subject of published IRSF warnings; mobile and
# geographic ranges stay out even where fraud is common (Cuba, parts of Africa), since wholesale carriers send
# them legitimate traffic at rates the high-risk rule would refuse.
HIGH_RISK_PREFIXES = (
    ("881", "Global Mobile Satellite System (Iridium 8816/8817, Globalstar 8818/8819)"),
    ("882", "International Networks: shared code, many ranges terminate at premium rates"),
    ("883", "International Networks: shared code, premium-rate termination"),
    ("870", "Inmarsat SNAC: maritime satellite, the dearest termination there is"),
    ("979", "International Premium Rate Service (ITU UIPRN)"),
    ("449", "UK 09 premium-rate services"),
    ("4470", "UK 070 personal numbers: not mobiles, long abused for revenue share"),
    ("37190", "Latvia 90 premium-rate services"),
    ("37090", "Lithuania 90 premium-rate services"),
)


class Command(BaseCommand):
    help = "Create the demo admin, accounts, rate tables, gateways and list groups (idempotent); needs --demo."

    def add_arguments(self, parser):
        parser.add_argument(
            "--demo",
            action="store_true",
            help="Confirm this is a demo machine: the data includes a superuser with a known password.",
        )

    def handle(self, *args, **options):
        if not options["demo"]:
            raise CommandError(
                "seed_demo creates a superuser with a known password; run it with --demo, on a demo machine only"
            )
        username = os.environ.get("SS_ADMIN_USER", "admin")
        password = os.environ.get("SS_ADMIN_PASSWORD")
        if password is None:
            # The one default password the project has, and only here.
            password = "admin"
        else:
            try:
                password_validation.validate_password(password, get_user_model()(username=username))
            except ValidationError as exc:
                raise CommandError(f"SS_ADMIN_PASSWORD: {' '.join(exc.messages)}") from None
        with transaction.atomic():
            admin = self.seed_admin(username, password)
            self.seed_switch(admin)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Portal login: {username} / {password}"))

    def seed_admin(self, username, password):
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True, "email": "admin@localhost"}
        )
        if created:
            user.set_password(password)
            user.save()
        return user

    def seed_switch(self, admin):
        retail, _ = RateTable.objects.get_or_create(name="Customer retail", defaults={"currency": "USD"})
        for prefix, area, price, first, nxt in CUSTOMER_RATES:
            Rate.objects.update_or_create(
                rate_table=retail,
                prefix=prefix,
                valid_from=None,
                defaults={"area": area, "price_per_minute": Decimal(price), "first_period": first, "next_period": nxt},
            )
        vendor_tables = {}
        for name, rows in VENDOR_RATES.items():
            table, _ = RateTable.objects.get_or_create(name=name, defaults={"currency": "USD"})
            vendor_tables[name] = table
            for prefix, area, price in rows:
                Rate.objects.update_or_create(
                    rate_table=table,
                    prefix=prefix,
                    valid_from=None,
                    defaults={"area": area, "price_per_minute": Decimal(price), "first_period": 1, "next_period": 1},
                )

        customer, _ = Account.objects.get_or_create(
            name="Demo Customer",
            defaults={
                "account_type": AccountType.CUSTOMER,
                "rate_table": retail,
                "credit_limit": Decimal("10"),
                "alarm_email": "noc@example.com",
                "low_balance_threshold": Decimal("20"),
            },
        )
        if not customer.payments.exists():
            apply_payment(customer, PaymentKind.RECHARGE, Decimal("100.00"), admin, memo="Demo opening balance")
        vendor_a, _ = Account.objects.get_or_create(
            name="Vendor A", defaults={"account_type": AccountType.VENDOR, "rate_table": vendor_tables["Vendor A cost"]}
        )
        vendor_b, _ = Account.objects.get_or_create(
            name="Vendor B", defaults={"account_type": AccountType.VENDOR, "rate_table": vendor_tables["Vendor B cost"]}
        )

        strip_plus, _ = NumberTransformRule.objects.get_or_create(
            name="Strip international 00",
            defaults={"target": "callee", "match_prefix": "00", "strip_digits": 2, "priority": 10},
        )
        blocked_callers, _ = BlackWhiteListGroup.objects.get_or_create(
            name="Blocked callers", defaults={"kind": ListKind.BLACK, "description": "Known fraud sources"}
        )
        for number in ("15550000001", "15550000002"):
            ListEntry.objects.get_or_create(group=blocked_callers, number=number, match=MatchKind.EXACT)
        premium, _ = BlackWhiteListGroup.objects.get_or_create(
            name="Premium-rate destinations", defaults={"kind": ListKind.BLACK}
        )
        for prefix in ("1900", "44909"):
            ListEntry.objects.get_or_create(group=premium, number=prefix, match=MatchKind.PREFIX)
        high_risk, _ = BlackWhiteListGroup.objects.get_or_create(
            name="High-risk destinations",
            defaults={
                "kind": ListKind.HIGH_RISK,
                "description": "Premium, satellite and shared-cost ranges abused for revenue-share fraud (IRSF); "
                "screened on every gateway and account by the anti-fraud rules.",
            },
        )
        for prefix, why in HIGH_RISK_PREFIXES:
            ListEntry.objects.get_or_create(
                group=high_risk, number=prefix, match=MatchKind.PREFIX, defaults={"note": why}
            )

        gateway, created = MappingGateway.objects.get_or_create(
            name="Demo customer trunk",
            defaults={"account": customer, "remote_ips": ["127.0.0.1"], "capacity": 100, "cps_limit": 20},
        )
        if created:
            gateway.callee_transforms.add(strip_plus)
            gateway.caller_list_groups.add(blocked_callers)
            gateway.callee_list_groups.add(premium)

        # Scripts on this machine may call the VOS3000-compatible API, as a VOS host's access control allows.
        # By label: the vos app imports this one's models, so importing it here would make a cycle.
        apps.get_model("vos", "VosAccessRule").objects.get_or_create(
            network="127.0.0.1", directory="/external/server", defaults={"memo": "demo: this machine"}
        )

        for name, port, priority, account in (("Vendor A", 5070, 10, vendor_a), ("Vendor B", 5071, 20, vendor_b)):
            RoutingGateway.objects.get_or_create(
                name=name,
                defaults={
                    "host": "127.0.0.1",
                    "port": port,
                    "priority": priority,
                    "clearing_account": account,
                    "capacity": 200,
                },
            )
