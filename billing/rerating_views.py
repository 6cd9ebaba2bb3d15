"""Pages for re-rating jobs, the CDR dead letters and an account's balance history.

Kept apart from billing/views.py: same generic views and mixins, so the same
login and model permissions apply (re-rating jobs: the RerateJob model's;
dead letters: viewing CDRs to see them, changing CDRs to requeue or discard;
balance history: viewing accounts).
"""

from __future__ import annotations

import datetime as dt
from functools import partial

import django_tables2 as tables
import redis
from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views import View

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.export import stream_csv
from softswitch_portal.generic.forms import BaseModelForm
from softswitch_portal.generic.lookups import LookupField
from softswitch_portal.generic.tables import BaseTable, MoneyColumn, NumberColumn
from softswitch_portal.generic.utils import user_can

from . import ingest, rerating
from .models import CDR, Account, RerateChange, RerateJob
from .rerating_filtersets import RerateJobFilterSet

# ---------------------------------------------------------------------------
# Re-rating jobs


class RerateJobForm(BaseModelForm):
    fieldsets = (("Scope", ("account", "rate_table")), ("Period", ("start", "end")))

    class Meta:
        model = RerateJob
        fields = ["account", "rate_table", "start", "end"]
        help_texts = {
            "account": "Re-rate this account's calls (its fees as a customer, its cost as a vendor)…",
            "rate_table": "…or the calls of every account now on this rate table.",
        }

    def clean(self):
        data = super().clean()
        account, rate_table = data.get("account"), data.get("rate_table")
        if not account and not rate_table:
            raise ValidationError("Choose an account or a rate table.")
        if account and rate_table:
            raise ValidationError("Choose an account or a rate table, not both.")
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        if end and end > timezone.now() + dt.timedelta(days=1):
            self.add_error("end", "The end cannot be in the future.")
        return data


class RerateJobTable(BaseTable):
    id = tables.Column(linkify=True, verbose_name="Job")
    scope = tables.Column(empty_values=(), orderable=False)
    start = tables.DateTimeColumn()
    end = tables.DateTimeColumn()
    status = tables.Column()
    progress = tables.Column(empty_values=(), orderable=False)
    changed = NumberColumn()
    created_by = tables.Column()
    created = tables.DateTimeColumn()

    class Meta(BaseTable.Meta):
        model = RerateJob
        fields = ("id", "scope", "start", "end", "status", "progress", "changed", "created_by", "created")
        exclude = ("actions",)

    def render_id(self, record):
        return str(record)

    def render_scope(self, record):
        return record.scope

    def render_progress(self, record):
        return f"{record.done} / {record.total}"


class RerateJobListView(generic.ObjectListView):
    queryset = RerateJob.objects.select_related("account", "rate_table", "created_by")
    filterset = RerateJobFilterSet
    table = RerateJobTable


def _queue(job_id):
    from .tasks import rerate

    rerate.delay(job_id)


class RerateJobCreateView(generic.ObjectEditView):
    queryset = RerateJob.objects.all()
    form = RerateJobForm

    def save_form(self, request, form):
        job = form.save(commit=False)
        job.created_by = request.user
        job.save()
        # Queued once the job row is committed, or the worker could look for it before it exists.
        transaction.on_commit(partial(_queue, job.pk))
        return job


def _money(value):
    return format_html('<span class="negative">{}</span>', value) if value < 0 else value


class ChangeTable(tables.Table):
    start_time = tables.DateTimeColumn(verbose_name="Start")
    call_uuid = tables.Column(verbose_name="Call")
    callee_number = tables.Column(verbose_name="Callee")
    account = tables.Column(accessor="account_id", verbose_name="Account")
    old_fee = MoneyColumn(verbose_name="Fee before")
    new_fee = MoneyColumn(verbose_name="Fee after")
    fee_difference = MoneyColumn(empty_values=(), orderable=False, verbose_name="Fee diff")
    old_vendor_cost = MoneyColumn(verbose_name="Cost before")
    new_vendor_cost = MoneyColumn(verbose_name="Cost after")
    cost_difference = MoneyColumn(empty_values=(), orderable=False, verbose_name="Cost diff")
    rate_prefix = tables.Column(empty_values=(), orderable=False, verbose_name="Prefix")

    class Meta:
        attrs = {"class": "table table-hover"}
        template_name = "generic/table.html"
        empty_text = "No CDR changed."

    def __init__(self, *args, names=None, **kwargs):
        self.names = names or {}
        super().__init__(*args, **kwargs)

    def render_account(self, value):
        return self.names.get(value, value)

    def render_fee_difference(self, record):
        return _money(record.new_fee - record.old_fee)

    def render_cost_difference(self, record):
        return _money(record.new_vendor_cost - record.old_vendor_cost)

    def render_rate_prefix(self, record):
        if record.old_rate_prefix == record.new_rate_prefix:
            return record.new_rate_prefix or "—"
        return f"{record.old_rate_prefix or '—'} → {record.new_rate_prefix or '—'}"


def job_progress(job):
    return {
        "status": job.status,
        "status_display": job.get_status_display(),
        "done": job.done,
        "total": job.total,
        "changed": job.changed,
        "percent": job.percent,
        "error": job.error,
        "finished": job.status in ("done", "failed"),
    }


class RerateJobView(generic.BaseObjectView):
    queryset = RerateJob.objects.select_related("account", "rate_table", "created_by")
    action = "detail"
    template_name = "billing/reratejob_detail.html"
    per_page = 100

    def get(self, request, pk):
        job = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.GET.get("format") == "json":
            return JsonResponse(job_progress(job))
        changes = RerateChange.objects.filter(job=job)
        if request.GET.get("export") == "csv":
            return self.export_csv(job, changes)
        totals = rerating.report_totals(job)
        account_totals = rerating.account_totals(job)
        ids = set(changes.values_list("account_id", flat=True).distinct())
        names = dict(Account.objects.filter(pk__in=ids).values_list("pk", "name"))
        table = ChangeTable(changes, names=names)
        tables.RequestConfig(request, paginate={"per_page": self.per_page}).configure(table)
        context = {
            **self.model_context(request),
            "object": job,
            "progress": job_progress(job),
            "totals": totals,
            "fee_difference": (totals["new_fee"] or 0) - (totals["old_fee"] or 0),
            "cost_difference": (totals["new_vendor_cost"] or 0) - (totals["old_vendor_cost"] or 0),
            "account_totals": account_totals,
            "table": table,
            "export_url": "?export=csv",
            "json_url": "?format=json",
        }
        return render(request, self.template_name, context)

    def export_csv(self, job, changes):
        header = [
            "cdr_id",
            "start_time",
            "call_uuid",
            "callee_number",
            "account_id",
            "vendor_account_id",
            "old_fee",
            "new_fee",
            "fee_difference",
            "old_vendor_cost",
            "new_vendor_cost",
            "cost_difference",
            "old_rate_prefix",
            "new_rate_prefix",
        ]

        def rows():
            for c in changes.iterator(chunk_size=2000):
                yield [
                    c.cdr_id,
                    c.start_time.isoformat(),
                    c.call_uuid,
                    c.callee_number,
                    c.account_id or "",
                    c.vendor_account_id or "",
                    c.old_fee,
                    c.new_fee,
                    c.new_fee - c.old_fee,
                    c.old_vendor_cost,
                    c.new_vendor_cost,
                    c.new_vendor_cost - c.old_vendor_cost,
                    c.old_rate_prefix,
                    c.new_rate_prefix,
                ]
            for t in rerating.account_totals(job):
                yield [
                    "total",
                    "",
                    "",
                    "",
                    t["account_id"],
                    "",
                    "",
                    "",
                    t["fee_difference"],
                    "",
                    "",
                    t["cost_difference"],
                    "",
                    "",
                ]

        return stream_csv(f"rerate-{job.pk}.csv", header, rows())


# ---------------------------------------------------------------------------
# Dead letters


class DeadLetterView(LoginRequiredMixin, View):
    """The CDR records the ingest set aside, with why; requeue (after a fix) or discard each."""

    template_name = "billing/dead_letters.html"
    limit = 200

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            needed = "billing.change_cdr" if request.method == "POST" else "billing.view_cdr"
            if not request.user.has_perm(needed):
                raise PermissionDenied("You may not manage CDR dead letters.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        error, letters, count = None, [], 0
        try:
            letters = ingest.dead_letters(self.limit)
            count = ingest.dead_letter_count()
        except redis.RedisError as exc:
            error = f"Redis is unavailable: {exc}"
        rows = [
            (letter, dt.datetime.fromtimestamp(letter.at_ms / 1000, tz=dt.UTC) if letter.at_ms else None)
            for letter in letters
        ]
        context = {
            "letters": rows,
            "count": count,
            "error": error,
            "limit": self.limit,
            "can_change": request.user.has_perm("billing.change_cdr"),
        }
        return render(request, self.template_name, context)

    def post(self, request):
        letter_id, action = request.POST.get("letter", ""), request.POST.get("action")
        try:
            if action == "requeue":
                ingest.requeue_dead_letter(letter_id)
                messages.success(request, f"Dead letter {letter_id} put back on the CDR stream.")
            elif action == "discard":
                if ingest.discard_dead_letter(letter_id):
                    messages.success(request, f"Dead letter {letter_id} discarded.")
                else:
                    messages.warning(request, f"Dead letter {letter_id} was already gone.")
            else:
                messages.error(request, "Unknown action.")
        except KeyError:
            messages.warning(request, f"Dead letter {letter_id} was already gone.")
        except (redis.RedisError, ValueError) as exc:
            messages.error(request, f"Could not {action} {letter_id}: {exc}")
        return redirect("billing:dead_letters")


# ---------------------------------------------------------------------------
# Balance history

BALANCE_HISTORY_SQL = """
WITH moves AS (
    SELECT (created AT TIME ZONE %(tz)s)::date AS day,
           sum(CASE WHEN kind = 'recharge' THEN amount ELSE -amount END) AS payments,
           0::numeric AS charges, count(*) AS payment_count, 0::bigint AS call_count
    FROM billing_payment WHERE account_id = %(account)s AND created >= %(since)s
    GROUP BY 1
  UNION ALL
    SELECT (start_time AT TIME ZONE %(tz)s)::date, 0, -sum(fee), 0, count(*)
    FROM billing_cdr WHERE account_id = %(account)s AND start_time >= %(since)s AND fee <> 0
    GROUP BY 1
  UNION ALL
    SELECT (start_time AT TIME ZONE %(tz)s)::date, 0, sum(vendor_cost), 0, count(*)
    FROM billing_cdr WHERE vendor_account_id = %(account)s AND start_time >= %(since)s AND vendor_cost <> 0
    GROUP BY 1
), days AS (
    SELECT day, sum(payments) AS payments, sum(charges) AS charges,
           sum(payment_count) AS payment_count, sum(call_count) AS call_count
    FROM moves GROUP BY day
)
SELECT day, payments, charges, payments + charges AS net, payment_count, call_count,
       (SELECT balance FROM billing_account WHERE id = %(account)s)
       - coalesce(sum(payments + charges) OVER (ORDER BY day DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
       AS closing
FROM days ORDER BY day DESC
"""


def balance_history(account: Account, days: int) -> list[dict]:
    """Per day, newest first: payments, CDR charges (debits of a customer, credits of a vendor) and closing balance.

    Walked back from the current balance in one statement (one snapshot), so
    the newest closing balance is the account's balance now.
    """
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    since = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time.min, tzinfo=tz)
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_HISTORY_SQL, {"tz": str(tz), "account": account.pk, "since": since})
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


class BalanceHistoryForm(forms.Form):
    account = LookupField("account")
    days = forms.IntegerField(min_value=1, max_value=366, initial=30, required=False)


class BalanceHistoryView(generic.BaseObjectView):
    queryset = Account.objects.all()
    action = "detail"
    template_name = "billing/balance_history.html"

    def get(self, request):
        form = BalanceHistoryForm(request.GET or None)
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
