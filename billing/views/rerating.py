"""Re-rating job pages: list, start one, and a job's progress and changes (with a CSV of them)."""

from functools import partial

from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django_tables2 import RequestConfig

from softswitch_portal.generic import views as generic
from softswitch_portal.generic.export import stream_csv

from .. import forms, rerating, tables
from ..models import Account, RerateChange, RerateJob
from ..rerating_filtersets import RerateJobFilterSet
from ..tasks import rerate


class RerateJobListView(generic.ObjectListView):
    queryset = RerateJob.objects.select_related("account", "rate_table", "created_by")
    filterset = RerateJobFilterSet
    table = tables.RerateJobTable


def _queue(job_id):

    rerate.delay(job_id)


class RerateJobCreateView(generic.ObjectEditView):
    queryset = RerateJob.objects.all()
    form = forms.RerateJobForm

    def save_form(self, request, form):
        job = form.save(commit=False)
        job.created_by = request.user
        job.save()
        # Queued once the job row is committed, or the worker could look for it before it exists.
        transaction.on_commit(partial(_queue, job.pk))
        return job


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
        table = tables.ChangeTable(changes, names=names)
        RequestConfig(request, paginate={"per_page": self.per_page}).configure(table)
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
