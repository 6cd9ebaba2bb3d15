"""The review run's pages: pick a period and rules, then watch the replay and read what it would have blocked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import django_tables2 as tables
from celery.result import AsyncResult
from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views import View
from django_tables2 import RequestConfig

from callcore.contract import POST_CALL_RULES

from .review_run import review_run

RULE_LABELS = {
    "no_answer_callee": "No-answer callee",
    "short_call_burst": "Short-call burst",
    "spend_velocity_actual": "Spend velocity (actual cost)",
    "long_call": "Long call",
}
MAX_PERIOD = dt.timedelta(days=31)  # a month of CDRs is about what one run should read
EVIDENCE_SHOWN = 4  # the latest calls linked in the table; the count says how many were kept


class ReviewRunForm(forms.Form):
    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    rules = forms.MultipleChoiceField(
        choices=[(r.value, RULE_LABELS.get(r.value, r.value)) for r in POST_CALL_RULES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Each rule chosen is replayed with the levels its system parameters hold now, even if it is off "
        "or report-only.",
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end <= start:
                self.add_error("end", "The end must be after the start.")
            elif end - start > MAX_PERIOD:
                self.add_error("end", f"A review covers at most {MAX_PERIOD.days} days.")
        return data


class ReviewPermission(LoginRequiredMixin, PermissionRequiredMixin):
    # Whoever may review the dynamic blacklist may ask what the rules would put in it.
    permission_required = "security.change_dynamicblacklistentry"


class ReviewRunStartView(ReviewPermission, View):
    template_name = "security/review_run_form.html"

    def get(self, request):
        now = timezone.localtime().replace(second=0, microsecond=0)
        initial = {"start": now - dt.timedelta(days=1), "end": now, "rules": [r.value for r in POST_CALL_RULES]}
        return render(request, self.template_name, {"form": ReviewRunForm(initial=initial)})

    def post(self, request):
        form = ReviewRunForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form}, status=400)
        data = form.cleaned_data
        queued = review_run.delay(data["start"].isoformat(), data["end"].isoformat(), data["rules"])
        return redirect("security:review_run", task_id=queued.id)


def run_state(task_id: str) -> dict:
    """The run's state as the page polls it: queued, running (done of total), finished or failed."""
    result = AsyncResult(task_id)
    state = {"state": result.state, "done": 0, "total": 0, "percent": 0, "finished": False, "error": ""}
    if result.state == "PROGRESS" and isinstance(result.info, dict):
        state.update(done=result.info.get("done", 0), total=result.info.get("total", 0))
    elif result.state == "SUCCESS":
        state.update(done=result.result["cdrs"], total=result.result["cdrs"], finished=True)
    elif result.state in ("FAILURE", "REVOKED"):
        state.update(finished=True, error=str(result.info))
    if state["total"]:
        state["percent"] = round(100 * state["done"] / state["total"])
    elif state["finished"]:
        state["percent"] = 100
    return state


def _moment(ms: int) -> dt.datetime:
    return timezone.localtime(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


class EntryTable(tables.Table):
    """What the rules would have added, sortable by every column."""

    subject = tables.Column()
    rule = tables.Column()
    scope = tables.Column()
    first_trip = tables.DateTimeColumn(format="Y-m-d H:i:s", verbose_name="First trip")
    figures = tables.Column(orderable=False)
    evidence = tables.Column(orderable=False, verbose_name="Evidence CDRs")
    expires = tables.DateTimeColumn(format="Y-m-d H:i:s", verbose_name="Would have blocked until")
    saved_calls = tables.Column(verbose_name="Calls refused", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    saved = tables.Column(verbose_name="Vendor cost saved", attrs={"td": {"class": "num"}, "th": {"class": "num"}})

    class Meta:
        attrs = {"class": "table", "id": "review-entries"}
        order_by = ("first_trip",)
        empty_text = "The rules would have blocked nothing in this period."

    def render_rule(self, value):
        return RULE_LABELS.get(value, value)

    def render_scope(self, value, record):
        return value if record["mapping_gateway_id"] is None else f"gateway #{record['mapping_gateway_id']}"

    def render_figures(self, value):
        return format_html_join(", ", "{}: {}", sorted(value.items()))

    def render_evidence(self, value, record):
        cdrs = reverse("billing:cdr_list")
        since = (record["first_trip"] - dt.timedelta(days=1)).isoformat()
        links = format_html_join(
            " ", '<a class="mono" href="{}?{}" title="{}">{}</a>',
            ((cdrs, urlencode({"q": u, "start_time_after": since}), u, u[:8]) for u in value[-EVIDENCE_SHOWN:]),
        )  # fmt: skip
        return format_html("{} <span class='muted'>({})</span>", links, len(value))


class ReviewRunView(ReviewPermission, View):
    template_name = "security/review_run.html"

    def get(self, request, task_id):
        if len(task_id) > 64:
            raise Http404("No such review run.")
        state = run_state(task_id)
        if request.GET.get("format") == "json":
            return JsonResponse(state)
        context = {"task_id": task_id, "progress": state, "json_url": "?format=json"}
        result = AsyncResult(task_id).result if state["state"] == "SUCCESS" else None
        if result:
            rows = [
                {**e, "first_trip": _moment(e["first_trip_ms"]), "expires": _moment(e["expires_ms"]),
                 "saved": Decimal(e["saved"])}
                for e in result["entries"]
            ]  # fmt: skip
            rule = request.GET.get("rule", "")
            subject = request.GET.get("subject", "").strip()
            shown = [r for r in rows if (not rule or r["rule"] == rule) and subject in r["subject"]]
            table = EntryTable(shown)
            RequestConfig(request, paginate={"per_page": 100}).configure(table)
            context.update(
                result=result,
                start=dt.datetime.fromisoformat(result["start"]),
                end=dt.datetime.fromisoformat(result["end"]),
                rule_labels=[RULE_LABELS.get(r, r) for r in result["rules"]],
                table=table,
                entries=len(rows),
                shown=len(shown),
                saved=Decimal(result["saved"]),
                warnings=sorted((RULE_LABELS.get(k, k), v) for k, v in result["warnings"].items()),
                rule_filter=rule,
                subject_filter=subject,
                rule_choices=[(r, RULE_LABELS.get(r, r)) for r in result["rules"]],
            )
        return render(request, self.template_name, context)


# Included by security.urls.
urlpatterns = [
    path("dynamic-blacklist/review-run/", ReviewRunStartView.as_view(), name="review_run_start"),
    path("dynamic-blacklist/review-run/<str:task_id>/", ReviewRunView.as_view(), name="review_run"),
]
