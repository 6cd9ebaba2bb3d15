"""Portal pages of the API clients (a token shown once, when made or replaced) and of the API request log."""

import django_tables2 as tables
from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.forms import ArrayTextField, BaseModelForm
from softswitch_portal.generic.tables import ArrayColumn, BaseTable, BooleanColumn, ChoiceColumn, DateTimeColumn
from softswitch_portal.generic.utils import user_can
from softswitch_portal.validators import validate_ip_or_cidr

from .api_client_filtersets import APIClientFilterSet, APIRequestLogFilterSet
from .api_clients import APIClient, APIRequestLog, APIScope

TOKEN_TEMPLATE = "security/apiclient_token.html"


class APIClientForm(BaseModelForm):
    scopes = forms.MultipleChoiceField(
        choices=APIScope.choices,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "checkbox-list"}),
        required=False,
        help_text=APIClient._meta.get_field("scopes").help_text,
    )
    allowed_networks = ArrayTextField(
        item_validator=validate_ip_or_cidr, help_text=APIClient._meta.get_field("allowed_networks").help_text
    )

    fieldsets = (
        ("Client", ("name", "owner", "description", "enabled")),
        ("Access", ("scopes", "allowed_networks", "vos_api", "throttle_per_minute", "expires_at")),
    )

    class Meta:
        model = APIClient
        fields = (
            "name", "owner", "description", "enabled", "scopes", "allowed_networks", "vos_api", "throttle_per_minute",
            "expires_at",
        )  # fmt: skip


class APIClientTable(BaseTable):
    name = tables.Column(linkify=True)
    token_prefix = tables.Column(verbose_name="Token starts", attrs={"td": {"class": "mono"}})
    scopes = ArrayColumn()
    allowed_networks = ArrayColumn(verbose_name="Networks", attrs={"td": {"class": "mono"}})
    vos_api = BooleanColumn(verbose_name="VOS API")
    throttle_per_minute = tables.Column(verbose_name="Per minute", attrs={"td": {"class": "num"}})
    enabled = BooleanColumn()
    expires_at = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Expires")
    # A client never used has no time: the stock column shows its default for None.
    last_used_at = tables.DateTimeColumn(format="Y-m-d H:i", verbose_name="Last used")

    class Meta(BaseTable.Meta):
        model = APIClient
        fields = (
            "name", "owner", "token_prefix", "scopes", "allowed_networks", "vos_api", "throttle_per_minute", "enabled",
            "expires_at", "last_used_at",
        )  # fmt: skip


class APIRequestLogTable(BaseTable):
    created = DateTimeColumn(verbose_name="When", linkify=True)
    client = tables.Column(linkify=True)
    source_ip = tables.Column(verbose_name="Source IP", attrs={"td": {"class": "mono"}})
    endpoint = tables.Column(attrs={"td": {"class": "mono"}})
    status = ChoiceColumn()

    class Meta(BaseTable.Meta):
        model = APIRequestLog
        fields = ("created", "client", "user", "source_ip", "method", "endpoint", "status")
        exclude = ("actions",)


class APIClientListView(generic.ObjectListView):
    queryset = APIClient.objects.select_related("owner")
    filterset = APIClientFilterSet
    table = APIClientTable
    export_exclude = ("token_hash",)


class APIClientView(generic.ObjectView):
    queryset = APIClient.objects.select_related("owner")
    fieldsets = (
        ("Client", ("name", "owner", "description", "enabled", "token_prefix", "token_hash")),
        ("Access", ("scopes", "allowed_networks", "vos_api", "throttle_per_minute", "expires_at")),
        ("Record", ("last_used_at", "created", "updated", "id")),
    )
    # Only a hash, but nothing a reader needs: the start of the token names it.
    secret_fields = ("token_hash",)

    def get_extra_context(self, request, obj):
        buttons = []
        if user_can(request.user, APIClient, "edit"):
            buttons.append(("New token", reverse("security:apiclient_token", args=[obj.pk]), ""))
        if user_can(request.user, APIRequestLog, "list"):
            url = f"{reverse('security:apirequestlog_list')}?{urlencode({'client': obj.pk})}"
            buttons.append(("Requests", url, ""))
        return {"extra_buttons": buttons}


class APIClientEditView(generic.ObjectEditView):
    """Add makes the first token and shows it once; edit leaves the token as it is."""

    queryset = APIClient.objects.all()
    form = APIClientForm

    def get_initial(self, request):
        return {"owner": request.user.pk, "scopes": [APIScope.READ], **super().get_initial(request)}

    def post(self, request, pk=None):
        if pk is not None:
            return super().post(request, pk)
        obj = self.get_object(request, pk)
        form = self.form(data=request.POST, instance=obj)
        if not form.is_valid():
            return self.render_form(request, obj, form)
        with transaction.atomic():
            client = form.save(commit=False)
            token = client.issue_token()
            client.save()
        return show_token(request, client, token)


class APIClientTokenView(generic.BaseObjectView):
    """A new token replaces the old one at once: the scripts holding the old one are refused from then on."""

    queryset = APIClient.objects.all()
    action = "edit"

    def get(self, request, pk):
        client = get_object_or_404(self.queryset, pk=pk)
        return render(request, TOKEN_TEMPLATE, {**self.model_context(request), "object": client, "confirm": True})

    def post(self, request, pk):
        with transaction.atomic():
            client = get_object_or_404(self.queryset.select_for_update(), pk=pk)
            token = client.issue_token()
            client.save(update_fields=["token_prefix", "token_hash", "updated"])
        return show_token(request, client, token)


def show_token(request, client, token):
    """The only page that ever shows the token: it is not stored, so it cannot be shown again."""
    messages.success(request, f"API client {client} has a new token.")
    response = render(
        request,
        TOKEN_TEMPLATE,
        {
            "object": client,
            "token": token,
            "verbose_name": APIClient._meta.verbose_name,
            "verbose_name_plural": APIClient._meta.verbose_name_plural,
            "list_url": reverse("security:apiclient_list"),
            "area": "Security",
            "example_url": request.build_absolute_uri(reverse("billing-api:account-list")),
        },
    )
    # Neither the browser's cache nor a proxy may keep the page holding the token.
    response["Cache-Control"] = "no-store"
    return response


class APIClientDeleteView(generic.ObjectDeleteView):
    queryset = APIClient.objects.all()


class APIRequestLogListView(generic.ObjectListView):
    queryset = APIRequestLog.objects.select_related("client", "user")
    filterset = APIRequestLogFilterSet
    table = APIRequestLogTable
    primary_filters = ("client", "endpoint", "status", "source_ip", "created_after", "created_before")


class APIRequestLogView(generic.ObjectView):
    queryset = APIRequestLog.objects.select_related("client", "user")
