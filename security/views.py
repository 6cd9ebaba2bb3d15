"""Security pages: declarations on the generic views."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, F, Q, Value, When
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from billing.models import CDR
from billing.tables import CDRTable
from softswitch_portal.generic import views as generic
from softswitch_portal.generic.utils import safe_return_url, user_can

from . import alarms, dynamic_blacklist, filtersets, forms, tables
from .choices import AlarmSubject, BlacklistStatus
from .models import Alarm, BlacklistExemption, BlackWhiteListGroup, DynamicBlacklistEntry, ListEntry

# Black/white list groups


class BlackWhiteListGroupListView(generic.ObjectListView):
    queryset = BlackWhiteListGroup.objects.annotate(entry_count=Count("entries"))
    filterset = filtersets.BlackWhiteListGroupFilterSet
    table = tables.BlackWhiteListGroupTable


class BlackWhiteListGroupView(generic.ObjectView):
    queryset = BlackWhiteListGroup.objects.all()

    def get_extra_context(self, request, obj):
        buttons = []
        if user_can(request.user, ListEntry, "add"):
            buttons.append(("Add entry", f"{reverse('security:listentry_add')}?group={obj.pk}", "btn-primary"))
        return {
            "extra_buttons": buttons,
            "related_tables": [
                generic.related_table(
                    "Entries",
                    tables.ListEntryTable,
                    obj.entries.all(),
                    "security:listentry_list",
                    shown=25,
                    group=obj.pk,
                )
            ],
        }


class BlackWhiteListGroupEditView(generic.ObjectEditView):
    queryset = BlackWhiteListGroup.objects.all()
    form = forms.BlackWhiteListGroupForm


class BlackWhiteListGroupDeleteView(generic.ObjectDeleteView):
    queryset = BlackWhiteListGroup.objects.all()


# List entries


class ListEntryListView(generic.ObjectListView):
    queryset = ListEntry.objects.select_related("group")
    filterset = filtersets.ListEntryFilterSet
    table = tables.ListEntryTable


class ListEntryView(generic.ObjectView):
    queryset = ListEntry.objects.select_related("group")


class ListEntryEditView(generic.ObjectEditView):
    queryset = ListEntry.objects.all()
    form = forms.ListEntryForm


class ListEntryDeleteView(generic.ObjectDeleteView):
    queryset = ListEntry.objects.all()


# Dynamic blacklist: the admin's review queue. The detectors enforce an entry in Redis at once; the worker
# records it here (security.fraud_events) and an admin confirms, releases, or releases and exempts it.

REVIEW_PERMISSION = "security.review_dynamicblacklistentry"
# How far before an entry's window its evidence calls may have started: a post-call rule counts calls after
# they ended, so a call may have begun this long before its window (the ingest's view of a long call).
EVIDENCE_LOOKBACK = dt.timedelta(hours=6)
EVIDENCE_SHOWN = 200


def evidence_window(entry):
    window_s = entry.figures.get("window_s") if isinstance(entry.figures, dict) else None
    window = dt.timedelta(seconds=window_s if isinstance(window_s, int) and window_s > 0 else 3600)
    return entry.created - window - EVIDENCE_LOOKBACK, entry.created + dt.timedelta(minutes=5)


def evidence_ids(entry):
    return [item for item in entry.evidence or () if isinstance(item, str) and item][:EVIDENCE_SHOWN]


def evidence_cdrs(entries):
    """The CDRs of the entries' evidence calls, by entry.

    An evidence item is the call's Call-ID (a set-up rule's, before any CDR
    exists) or its call_uuid. The CDR table is partitioned by start time, so
    the look-up is bounded to the time the calls can have started in.
    """
    entries = [entry for entry in entries if evidence_ids(entry)]
    if not entries:
        return CDR.objects.none(), {}
    ids = {item for entry in entries for item in evidence_ids(entry)}
    windows = [evidence_window(entry) for entry in entries]
    cdrs = list(
        CDR.objects.filter(
            Q(caller_call_id__in=ids) | Q(call_uuid__in=ids),
            start_time__gte=min(start for start, _ in windows),
            start_time__lt=max(end for _, end in windows),
        ).only("pk", "start_time", "caller_call_id", "call_uuid")
    )
    by_entry = {}
    for entry, (start, end) in zip(entries, windows, strict=True):
        wanted = set(evidence_ids(entry))
        by_entry[entry.pk] = [
            cdr
            for cdr in cdrs
            if (cdr.caller_call_id in wanted or cdr.call_uuid in wanted) and start <= cdr.start_time < end
        ]
    return cdrs, by_entry


def review_queue(queryset):
    """Entries awaiting review first, the newest first within each group."""
    waiting = Case(When(status=BlacklistStatus.AWAITING_REVIEW, then=Value(0)), default=Value(1))
    return queryset.annotate(review_order=waiting).order_by("review_order", "-created")


class DynamicBlacklistEntryListView(generic.ObjectListView):
    queryset = DynamicBlacklistEntry.objects.select_related("account", "mapping_gateway", "reviewed_by")
    filterset = filtersets.DynamicBlacklistEntryFilterSet
    table = tables.DynamicBlacklistEntryTable
    template_name = "security/dynamicblacklistentry_list.html"
    primary_filters = ("status", "rule", "subject_kind", "number", "account", "created_after", "created_before")

    def get_queryset(self, request):
        return review_queue(super().get_queryset(request))

    def paginate(self, request, table):
        super().paginate(request, table)
        # One query for the evidence of the rows shown, for the timeline column.
        page = getattr(table, "page", None)
        rows = [row.record for row in page.object_list] if page is not None else []
        _, by_entry = evidence_cdrs(rows)
        table.evidence_starts = {pk: [cdr.start_time for cdr in cdrs] for pk, cdrs in by_entry.items()}

    def get_extra_context(self, request, queryset, filterset):
        can_review = request.user.has_perm(REVIEW_PERMISSION)
        return {
            "can_review": can_review,
            "review_form": forms.ReviewForm(bulk=True, initial={"hours": 24, "days": 7}) if can_review else None,
            "awaiting_count": DynamicBlacklistEntry.objects.filter(status=BlacklistStatus.AWAITING_REVIEW).count(),
        }


class DynamicBlacklistEntryView(generic.ObjectView):
    queryset = DynamicBlacklistEntry.objects.select_related("account", "mapping_gateway", "reviewed_by")
    template_name = "security/dynamicblacklistentry_detail.html"
    fieldsets = (
        ("Entry", ("subject_kind", "number", "account", "scope", "mapping_gateway", "status", "created", "expires_at")),
        ("Why", ("rule", "severity", "reason", "figures", "node", "evidence")),
        ("Review", ("reviewed_by", "reviewed_at", "review_note", "stream_id", "id")),
    )

    def get_extra_context(self, request, obj):
        buttons = []
        if obj.number:
            url = reverse("billing:cdr_list")
            buttons.append(("Calls from this number", f"{url}?{urlencode({'caller_prefix': obj.number})}", ""))
        related = []
        cdrs = []
        if obj.evidence and user_can(request.user, CDR, "list"):
            _, by_entry = evidence_cdrs([obj])
            cdrs = by_entry.get(obj.pk, [])
            shown = CDR.objects.filter(pk__in=[cdr.pk for cdr in cdrs], start_time__in=[c.start_time for c in cdrs])
            related.append(generic.related_table("Evidence CDRs", CDRTable, shown.order_by("start_time"), shown=50))
        exemptions = BlacklistExemption.objects.filter(
            **dynamic_blacklist.same_subject(obj.subject_kind, obj.number, obj.account_id)
        ).select_related("created_by")[:10]
        can_review = request.user.has_perm(REVIEW_PERMISSION) and obj.status in dynamic_blacklist.BLOCKING
        starts = [cdr.start_time for cdr in cdrs]
        return {
            "extra_buttons": buttons,
            "related_tables": related,
            "timeline": tables.timeline_svg(starts) if starts else "",
            "timeline_caption": tables.timeline_caption(starts),
            "evidence_total": len(evidence_ids(obj)),
            "evidence_found": len(cdrs),
            "figures_text": tables.figures_text(obj.figures),
            "exemptions": exemptions,
            "review_form": forms.ReviewForm(initial={"hours": 24, "days": 7}) if can_review else None,
        }


class DynamicBlacklistEntryEditView(generic.ObjectEditView):
    queryset = DynamicBlacklistEntry.objects.all()
    form = forms.DynamicBlacklistEntryForm


class ReviewPermissionMixin(LoginRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_perm(REVIEW_PERMISSION):
            raise PermissionDenied("You may not review dynamic blacklist entries.")
        return super().dispatch(request, *args, **kwargs)


def _report(request, action, done, skipped):
    verb = {"confirm": "Confirmed", "release": "Released", "release_exempt": "Released and exempted"}[action]
    if done:
        messages.success(request, f"{verb} {len(done)} entr{'y' if len(done) == 1 else 'ies'}: "
                         + ", ".join(str(entry) for entry in done[:10]) + (" …" if len(done) > 10 else ""))  # fmt: skip
    for entry, why in skipped:
        messages.warning(request, f"Skipped {entry}: {why}.")


def _form_errors(request, form):
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


class DynamicBlacklistEntryReviewView(ReviewPermissionMixin, View):
    """Confirm, release, or release and exempt one entry (the detail page's form)."""

    def post(self, request, pk):
        entry = get_object_or_404(DynamicBlacklistEntry, pk=pk)
        form = forms.ReviewForm(request.POST)
        if form.is_valid():
            action = form.cleaned_data["action"]
            done, skipped = dynamic_blacklist.review([entry.pk], action, request.user, **form.options())
            _report(request, action, done, skipped)
        else:
            # The form sits on the entry's page: say what was wrong there.
            _form_errors(request, form)
        return redirect(safe_return_url(request, entry.get_absolute_url()))


class DynamicBlacklistBulkReviewView(ReviewPermissionMixin, View):
    """The same actions on the entries ticked on the list page."""

    def post(self, request):
        form = forms.ReviewForm(request.POST, bulk=True)
        back = safe_return_url(request, reverse("security:dynamicblacklistentry_list"))
        if not form.is_valid():
            _form_errors(request, form)
            return redirect(back)
        action = form.cleaned_data["action"]
        ids = [entry.pk for entry in form.cleaned_data["entries"]]
        done, skipped = dynamic_blacklist.review(ids, action, request.user, **form.options())
        _report(request, action, done, skipped)
        return redirect(back)


# Exemptions: made by "release and exempt", or by hand; deleting one ends it (Redis follows on commit).


class BlacklistExemptionListView(generic.ObjectListView):
    queryset = BlacklistExemption.objects.select_related("account", "mapping_gateway", "entry", "created_by")
    filterset = filtersets.BlacklistExemptionFilterSet
    table = tables.BlacklistExemptionTable


class BlacklistExemptionView(generic.ObjectView):
    queryset = BlacklistExemption.objects.select_related("account", "mapping_gateway", "entry", "created_by")
    fieldsets = (
        ("Subject", ("subject_kind", "number", "account", "scope", "mapping_gateway")),
        ("Exemption", ("until", "reason", "entry", "created_by", "created", "id")),
    )


class BlacklistExemptionEditView(generic.ObjectEditView):
    queryset = BlacklistExemption.objects.all()
    form = forms.BlacklistExemptionForm

    def save_form(self, request, form):
        if form.instance.pk is None:
            form.instance.created_by = request.user
        return form.save()


class BlacklistExemptionDeleteView(generic.ObjectDeleteView):
    queryset = BlacklistExemption.objects.all()


# Alarms: raised by the detectors and the fraud rules (security.alarms); operators acknowledge or close them.


class AlarmListView(generic.ObjectListView):
    # Open alarms first, the newest activity on top; a column sort replaces this order.
    queryset = Alarm.objects.select_related(
        "account", "mapping_gateway", "routing_gateway", "acknowledged_by"
    ).order_by(F("resolved_at").desc(nulls_first=True), "-last_seen")
    filterset = filtersets.AlarmFilterSet
    table = tables.AlarmTable
    template_name = "security/alarm_list.html"
    primary_filters = ("state", "severity", "kind", "subject", "last_seen_after", "last_seen_before")

    def get_extra_context(self, request, queryset, filterset):
        return {
            "can_change": user_can(request.user, Alarm, "edit"),
            "open_counts": alarms.open_counts(),
            "action_url": reverse("security:alarm_action"),
        }


class AlarmView(generic.ObjectView):
    queryset = Alarm.objects.select_related("account", "mapping_gateway", "routing_gateway", "acknowledged_by")
    template_name = "security/alarm_detail.html"
    fieldsets = (
        ("Alarm", ("kind", "severity", "rule", "subject_kind", "subject", "account", "mapping_gateway",
                   "routing_gateway", "id")),
        ("Seen", ("first_seen", "last_seen", "count", "resolved_at")),
        ("Acknowledged", ("acknowledged_by", "acknowledged_at")),
        ("E-mail", ("notified_at", "notified_count")),
        ("Figures", ("figures",)),
        ("Deduplication", ("dedupe_key", "last_event_id")),
    )  # fmt: skip

    def get_extra_context(self, request, obj):
        buttons = []
        if obj.subject_kind == AlarmSubject.IP:
            url = reverse("billing:cdr_list")
            buttons.append(("Calls from this address", f"{url}?{urlencode({'caller_ip': obj.subject})}", ""))
        return {
            "extra_buttons": buttons,
            "can_change": user_can(request.user, Alarm, "edit"),
            "action_url": reverse("security:alarm_action"),
            "object_title": str(obj),
        }


class AlarmActionView(LoginRequiredMixin, View):
    """Acknowledge or close the alarms ticked (``pk``, one or many), recording who and when."""

    actions = {"acknowledge": (alarms.acknowledge, "acknowledged"), "close": (alarms.close, "closed")}

    def post(self, request):
        if not user_can(request.user, Alarm, "edit"):
            raise PermissionDenied("You may not change alarms.")
        back = safe_return_url(request, reverse("security:alarm_list"))
        action = self.actions.get(request.POST.get("action", ""))
        if action is None:
            return HttpResponseBadRequest("action: must be acknowledge or close")
        try:
            ids = [int(pk) for pk in request.POST.getlist("pk")]
        except ValueError:
            return HttpResponseBadRequest("pk: must be alarm ids")
        if not ids:
            messages.warning(request, "Tick the alarms to act on first.")
            return redirect(back)
        do, done = action
        changed = do(ids, request.user)
        messages.success(request, f"{changed} alarm{'s' if changed != 1 else ''} {done}.")
        return redirect(back)
