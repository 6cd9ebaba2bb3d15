"""Billing serializers. A balance is read-only everywhere: it moves only through payments and rating."""

from decimal import Decimal

from rest_framework import serializers

from callcore.contract import MONEY_PLACES
from softswitch_portal.api.serializers import ValidatedModelSerializer
from softswitch_portal.core import roles

from ..choices import PaymentKind
from ..models import CDR, Account, Payment, Rate, RateTable, RerateChange, RerateJob


class AccountSerializer(ValidatedModelSerializer):
    available = serializers.DecimalField(
        max_digits=19, decimal_places=MONEY_PLACES, read_only=True, help_text="Balance plus credit limit."
    )

    class Meta:
        model = Account
        fields = "__all__"
        read_only_fields = ("balance",)

    def validate(self, data):
        _credit_limit_guarded(self, data)
        return super().validate(data)


def _credit_limit_guarded(serializer, data):
    """As the page's form: changing a credit limit needs the credit-limit permission."""
    request = serializer.context.get("request")
    user = getattr(request, "user", None)
    if user is None or "credit_limit" not in data or user.has_perm(roles.CREDIT_LIMIT):
        return
    current = serializer.instance.credit_limit if serializer.instance is not None else Decimal(0)
    if data["credit_limit"] != current:
        raise serializers.ValidationError(
            {"credit_limit": "Changing a credit limit needs the credit-limit permission."}
        )


class PaymentSerializer(ValidatedModelSerializer):
    class Meta:
        model = Payment
        fields = "__all__"


class PaymentCreateSerializer(serializers.Serializer):
    """A recharge or deduction on an account: billing.services.apply_payment, as the portal's payment page."""

    account = serializers.PrimaryKeyRelatedField(queryset=Account.objects.all())
    kind = serializers.ChoiceField(choices=PaymentKind.choices)
    amount = serializers.DecimalField(max_digits=18, decimal_places=MONEY_PLACES, min_value=Decimal("0.0001"))
    memo = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class AmountSerializer(serializers.Serializer):
    """The body of an account's recharge and deduct actions."""

    amount = serializers.DecimalField(max_digits=18, decimal_places=MONEY_PLACES, min_value=Decimal("0.0001"))
    memo = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RateTableSerializer(ValidatedModelSerializer):
    class Meta:
        model = RateTable
        fields = "__all__"


class RateSerializer(ValidatedModelSerializer):
    class Meta:
        model = Rate
        fields = "__all__"
        # The unique constraint (table, prefix, valid from) is checked by full_clean, naming its fields.
        validators = []


class CDRSerializer(serializers.ModelSerializer):
    class Meta:
        model = CDR
        fields = "__all__"
        read_only_fields = [field.name for field in CDR._meta.concrete_fields]


class RerateJobSerializer(ValidatedModelSerializer):
    class Meta:
        model = RerateJob
        fields = "__all__"
        read_only_fields = ("status",)


class RerateChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = RerateChange
        fields = "__all__"
