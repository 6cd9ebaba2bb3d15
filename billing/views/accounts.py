"""Account pages: list, detail (its payments, gateways and phones), edit, delete."""

from django.urls import reverse

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can
from softswitch_portal.switching.models import MappingGateway, Phone, RoutingGateway
from softswitch_portal.switching.tables import MappingGatewayTable, PhoneTable, RoutingGatewayTable

from .. import filtersets, forms, tables
from ..models import CDR, Account, Payment


class AccountListView(generic.ObjectListView):
    queryset = Account.objects.select_related("rate_table")
    filterset = filtersets.AccountFilterSet
    table = tables.AccountTable


class AccountView(generic.ObjectView):
    queryset = Account.objects.select_related("rate_table")
    fieldsets = (
        ("Account", ("name", "account_type", "rate_table", "description")),
        ("Money", ("balance", "credit_limit", "available", "low_balance_threshold")),
        ("Limits", ("anti_overdraft", "capacity", "locked", "high_risk_exempt")),
        ("Alarms", ("alarm_email",)),
        ("Record", ("id", "created", "updated")),
    )

    def get_extra_context(self, request, obj):
        buttons = []
        if user_can(request.user, Payment, "add"):
            buttons.append(("Add payment", f"{reverse('billing:payment_add')}?account={obj.pk}", "btn-primary"))
        # Where an operator goes next from an account: its money over time and its calls.
        buttons.append(("Balance history", f"{reverse('billing:balance_history')}?account={obj.pk}", ""))
        if user_can(request.user, CDR, "list"):
            buttons.append(("CDRs", f"{reverse('billing:cdr_list')}?account={obj.pk}", ""))
        return {
            "extra_buttons": buttons,
            "related_tables": [
                generic.related_table(
                    "Recent payments", tables.PaymentTable, obj.payments.all(), "billing:payment_list", account=obj.pk
                ),
                generic.related_table(
                    "Mapping gateways",
                    MappingGatewayTable,
                    MappingGateway.objects.filter(account=obj),
                    "switching:mappinggateway_list",
                    account=obj.pk,
                ),
                generic.related_table(
                    "Routing gateways (clearing account)",
                    RoutingGatewayTable,
                    RoutingGateway.objects.filter(clearing_account=obj),
                    "switching:routinggateway_list",
                    clearing_account=obj.pk,
                ),
                generic.related_table(
                    "Phones", PhoneTable, Phone.objects.filter(account=obj), "switching:phone_list", account=obj.pk
                ),
            ],
        }


class AccountEditView(generic.ObjectEditView):
    queryset = Account.objects.all()
    form = forms.AccountForm


class AccountDeleteView(generic.ObjectDeleteView):
    queryset = Account.objects.all()
