"""Payment pages: list, detail and add; a wrong payment is corrected by another payment, never edited."""

from softswitch_portal.generic import views as generic

from .. import filtersets, forms, services, tables
from ..models import Payment


class PaymentListView(generic.ObjectListView):
    queryset = Payment.objects.select_related("account", "created_by")
    filterset = filtersets.PaymentFilterSet
    table = tables.PaymentTable


class PaymentView(generic.ObjectView):
    queryset = Payment.objects.select_related("account", "created_by")
    fieldsets = (("Payment", ("account", "kind", "amount", "balance_after", "memo", "created_by", "created", "id")),)


class PaymentCreateView(generic.ObjectEditView):
    queryset = Payment.objects.all()
    form = forms.PaymentForm

    def save_form(self, request, form):
        # Imported here: billing.services owns every balance move and must not be bypassed by form.save().

        data = form.cleaned_data
        return services.apply_payment(data["account"], data["kind"], data["amount"], request.user, memo=data["memo"])
