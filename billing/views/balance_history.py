"""An account's balance history page: per day, its payments, CDR charges and closing balance."""

from django.shortcuts import render
from django.urls import reverse

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import user_can

from .. import forms
from ..balance_history import balance_history
from ..models import CDR, Account


class BalanceHistoryView(generic.BaseObjectView):
    queryset = Account.objects.all()
    action = "detail"
    template_name = "billing/balance_history.html"

    def get(self, request):
        form = forms.BalanceHistoryForm(request.GET or None)
        rows, account, days = [], None, 30
        if form.is_bound and form.is_valid():
            account, days = form.cleaned_data["account"], form.cleaned_data["days"] or 30
            rows = balance_history(account, days)
        for field in form.fields.values():
            field.widget.attrs.setdefault("class", "form-control")
        context = {
            **self.model_context(request),
            "form": form,
            "account": account,
            "days": days,
            "rows": rows,
            "opening": rows[-1]["closing"] - rows[-1]["net"] if rows else None,
            "account_url": reverse("billing:account", args=[account.pk]) if account else None,
            "can_view_cdrs": user_can(request.user, CDR, "list"),
        }
        return render(request, self.template_name, context)
