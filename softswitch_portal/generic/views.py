"""Generic views: an app's views are declarations of a queryset, a filterset, a table, a form.

Every view needs a logged-in user and the model permission of its action
(view, add, change, delete), as NetBox does; a superuser has them all.
"""

from auditlog.registry import auditlog
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views import View
from django_tables2 import RequestConfig

from .attributes import field_help, field_label, is_wide, model_fields, render_value
from .export import ModelColumns, stream_csv
from .utils import has_action, object_url, safe_return_url, user_can


class BaseObjectView(LoginRequiredMixin, View):
    queryset = None
    action = "detail"

    @property
    def model(self):
        return self.queryset.model

    def get_queryset(self, request):
        return self.queryset.all()

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not user_can(request.user, self.model, self.action):
            raise PermissionDenied(f"You may not {self.action} {self.model._meta.verbose_name_plural}.")
        return super().dispatch(request, *args, **kwargs)

    def model_context(self, request):
        meta = self.model._meta
        user = request.user
        return {
            "model": self.model,
            "area": meta.app_config.verbose_name,
            "verbose_name": meta.verbose_name,
            "verbose_name_plural": meta.verbose_name_plural,
            "list_url": object_url(self.model, "list"),
            "add_url": object_url(self.model, "add") if user_can(user, self.model, "add") else None,
        }


class ObjectListView(BaseObjectView):
    """A filtered, sorted, paginated table with a filter form and a streamed CSV export.

    ``?export=csv`` downloads the whole filtered set (not just the page).
    """

    action = "list"
    filterset = None
    table = None
    template_name = "generic/object_list.html"
    paginator_class = Paginator
    max_per_page = 1000
    export_exclude = ()
    export_chunk_size = 2000
    # Filters shown open above the table; the others go under "More filters". None: all open.
    primary_filters = None

    def get_table_data(self, request, queryset):
        return queryset

    def get_extra_context(self, request, queryset, filterset):
        """More for the template (totals, a different pager); ``queryset`` is the filtered set."""
        return {}

    def get(self, request):
        queryset = self.get_queryset(request)
        filterset = None
        if self.filterset is not None:
            filterset = self.filterset(request.GET or None, queryset=queryset, request=request)
            # An invalid filter must not be dropped silently: an export would then hold every row.
            queryset = filterset.qs if filterset.is_valid() or not filterset.is_bound else queryset.none()
        filters_invalid = filterset is not None and filterset.is_bound and not filterset.is_valid()

        if request.GET.get("export") == "csv":
            if filters_invalid:
                messages.error(request, "Fix the filters before exporting.")
            else:
                return self.export_csv(request, queryset)

        # Not Table(request=...): that paginates at once from the raw, unchecked page and per_page.
        table = self.table(self.get_table_data(request, queryset))
        RequestConfig(request, paginate=False).configure(table)
        self.paginate(request, table)

        export_query = request.GET.copy()
        for paging in ("page", "after", "before"):
            export_query.pop(paging, None)
        export_query["export"] = "csv"
        context = {
            **self.model_context(request),
            "table": table,
            "filterset": filterset,
            "filter_form": filterset.form if filterset is not None else None,
            **self.split_filters(filterset),
            "filters_invalid": filters_invalid,
            "is_filtered": filterset is not None and filterset.is_filtered,
            "export_url": "?" + export_query.urlencode(),
        }
        context.update(self.get_extra_context(request, queryset, filterset))
        return render(request, self.template_name, context)

    def split_filters(self, filterset):
        if filterset is None:
            return {"primary_fields": [], "more_fields": [], "more_open": False}
        form = filterset.form
        visible = [bound for bound in form if not bound.is_hidden]
        # The quick search leads, whatever order the filterset declares its filters in.
        visible.sort(key=lambda bound: bound.name != "q")
        if self.primary_filters is None:
            return {"primary_fields": visible, "more_fields": [], "more_open": False}
        primary = [bound for bound in visible if bound.name in self.primary_filters or bound.name == "q"]
        primary.sort(key=lambda bound: -1 if bound.name == "q" else self.primary_filters.index(bound.name))
        primary_names = {bound.name for bound in primary}
        more = [bound for bound in visible if bound.name not in primary_names]
        more_open = (
            any(filterset.data.get(bound.name) not in (None, "") for bound in more) if filterset.is_bound else False
        )
        return {"primary_fields": primary, "more_fields": more, "more_open": more_open}

    def per_page(self, request):
        try:
            per_page = int(request.GET.get("per_page", settings.PAGINATE_BY))
        except ValueError:
            per_page = settings.PAGINATE_BY
        return max(1, min(per_page, self.max_per_page))

    def paginate(self, request, table):
        per_page = self.per_page(request)
        try:
            page = int(request.GET.get("page", 1))
        except ValueError:
            page = 1
        try:
            table.paginate(paginator_class=self.paginator_class, page=page, per_page=per_page)
        except (EmptyPage, PageNotAnInteger):
            table.paginate(paginator_class=self.paginator_class, page=1, per_page=per_page)

    # CSV export: subclasses with rows that are not plain model rows override these two.

    def export_header_and_rows(self, request, queryset):
        columns = ModelColumns(self.model, exclude=self.export_exclude)
        rows = (columns.row(obj) for obj in columns.prepare(queryset).iterator(chunk_size=self.export_chunk_size))
        return columns.header, rows

    def export_csv(self, request, queryset):
        header, rows = self.export_header_and_rows(request, queryset)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        filename = f"{self.model._meta.model_name}s-{stamp}.csv"
        return stream_csv(filename, header, rows)


class ObjectView(BaseObjectView):
    """A detail page: the object's fields grouped in panels, then related tables.

    ``fieldsets = (("Title", ("field", "property", ...)), ...)``; without it every
    field is shown in one panel. ``secret_fields`` are shown as hidden.
    """

    action = "detail"
    template_name = "generic/object_detail.html"
    fieldsets = None
    secret_fields = ()

    def get_object(self, request, pk):
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def get_fieldsets(self):
        if self.fieldsets is not None:
            return self.fieldsets
        return (("", [field.name for field in model_fields(self.model)]),)

    def render_fieldsets(self, obj):
        panels = []
        for title, names in self.get_fieldsets():
            rows = [
                {
                    "name": name,
                    "label": field_label(self.model, name),
                    "help": field_help(self.model, name),
                    "value": render_value(obj, name, secret=name in self.secret_fields),
                    "wide": is_wide(self.model, name),
                }
                for name in names
            ]
            panels.append({"title": title, "rows": rows})
        return panels

    def get_extra_context(self, request, obj):
        """Related tables and extra panels: ``{"related_tables": [(title, table, more_url)], ...}``."""
        return {}

    def get(self, request, pk):
        obj = self.get_object(request, pk)
        user = request.user
        context = {
            **self.model_context(request),
            "object": obj,
            "panels": self.render_fieldsets(obj),
            "edit_url": object_url(self.model, "edit", obj.pk) if user_can(user, self.model, "edit") else None,
            "delete_url": object_url(self.model, "delete", obj.pk) if user_can(user, self.model, "delete") else None,
            "history_url": history_url(user, self.model, obj.pk),
        }
        context.update(self.get_extra_context(request, obj))
        return render(request, self.template_name, context)


def history_url(user, model, pk):
    """The object's History tab (the audit trail's entries for it), for a user who may read the audit trail."""
    if not auditlog.contains(model) or not user.has_perm("auditlog.view_logentry"):
        return None
    meta = model._meta
    return reverse("auditlog:object_history", args=[meta.app_label, meta.model_name, pk])


def related_table(title, table_class, queryset, list_name=None, *, shown=10, **filters):
    """A short, unsorted table of related rows for a detail page, linking to the full filtered list."""
    total = queryset.count()
    if not total:
        return {"title": title, "table": None, "total": 0, "more_url": None}
    table = table_class(queryset[:shown], orderable=False, exclude=("actions",))
    more_url = f"{reverse(list_name)}?{urlencode(filters)}" if list_name else None
    return {"title": title, "table": table, "total": total, "more_url": more_url}


def add_validation_error(form, exc):
    """Attach a model or service ValidationError to the form, on its field where the form has one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


class ObjectEditView(BaseObjectView):
    """Create (no pk) or edit (pk) through ``form``, a ModelForm.

    On create, GET parameters that name form fields become initial values, so
    "Add payment" on an account's page can preselect the account.
    """

    form = None
    template_name = "generic/object_edit.html"

    def dispatch(self, request, *args, **kwargs):
        self.action = "edit" if kwargs.get("pk") is not None else "add"
        return super().dispatch(request, *args, **kwargs)

    def get_object(self, request, pk):
        if pk is None:
            return self.model()
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def get_initial(self, request):
        initial = {}
        for name, field in self.form.base_fields.items():
            if name in request.GET:
                values = request.GET.getlist(name)
                initial[name] = values if getattr(field.widget, "allow_multiple_selected", False) else values[-1]
        return initial

    def save_form(self, request, form):
        """Save and return the object; may raise ValidationError, which the form then shows."""
        return form.save()

    def build_form(self, request, **kwargs):
        form = self.form(**kwargs)
        # What moves money or trust (a credit limit, a large payment, a wide network) is checked in the form's clean().
        form.user = request.user
        return form

    def get(self, request, pk=None):
        obj = self.get_object(request, pk)
        form = self.build_form(request, instance=obj, initial=self.get_initial(request) if pk is None else None)
        return self.render_form(request, obj, form)

    def post(self, request, pk=None):
        obj = self.get_object(request, pk)
        form = self.build_form(request, data=request.POST, files=request.FILES, instance=obj)
        if form.is_valid():
            try:
                with transaction.atomic():
                    obj = self.save_form(request, form)
            except ValidationError as exc:
                add_validation_error(form, exc)
            else:
                verb = "Created" if pk is None else "Modified"
                messages.success(
                    request,
                    format_html(
                        '{} {} <a href="{}">{}</a>.',
                        verb,
                        self.model._meta.verbose_name,
                        object_url(self.model, "detail", obj.pk) or "#",
                        obj,
                    ),
                )
                if "_addanother" in request.POST and has_action(self.model, "add"):
                    return redirect(request.get_full_path())
                default = object_url(self.model, "detail", obj.pk) or object_url(self.model, "list")
                return redirect(safe_return_url(request, default))
        return self.render_form(request, obj, form)

    def render_form(self, request, obj, form):
        is_new = obj.pk is None
        detail_url = None if is_new else object_url(self.model, "detail", obj.pk)
        context = {
            **self.model_context(request),
            "object": obj,
            "form": form,
            "is_new": is_new,
            "errors_summary": form_errors_summary(form),
            "cancel_url": safe_return_url(request, detail_url or object_url(self.model, "list")),
            "can_add_another": is_new and has_action(self.model, "add"),
        }
        return render(request, self.template_name, context)


def form_errors_summary(form):
    """(label, message) for every error, for the box at the top of the form."""
    if not form.is_bound or not form.errors:
        return []
    summary = []
    for name, errors in form.errors.items():
        label = (
            "" if name == NON_FIELD_ERRORS else str(form.fields[name].label or name) if name in form.fields else name
        )
        summary.extend((label, name, error) for error in errors)
    return summary


class ObjectDeleteView(BaseObjectView):
    """Confirm, then delete; if PROTECT blocks it, say what still uses the object."""

    action = "delete"
    template_name = "generic/object_delete.html"
    protected_shown = 20

    def get(self, request, pk):
        obj = get_object_or_404(self.get_queryset(request), pk=pk)
        return self.render_confirm(request, obj, *self.collect(obj))

    def post(self, request, pk):
        obj = get_object_or_404(self.get_queryset(request), pk=pk)
        try:
            with transaction.atomic():
                obj.delete()
        except (ProtectedError, RestrictedError) as exc:
            blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            return self.render_confirm(request, obj, list(blockers), [])
        messages.success(request, f"Deleted {self.model._meta.verbose_name} {obj}.")
        return redirect(safe_return_url(request, object_url(self.model, "list") or "/"))

    def collect(self, obj):
        """What blocks the deletion, and what would go with it (counts per model)."""
        collector = Collector(using=router.db_for_write(self.model))
        try:
            collector.collect([obj])
        except ProtectedError as exc:
            return list(exc.protected_objects), []
        except RestrictedError as exc:
            return list(exc.restricted_objects), []
        cascades = []
        for model, instances in collector.data.items():
            count = len(instances) - (1 if model is self.model else 0)
            if count:
                cascades.append((model._meta.verbose_name_plural, count))
        for queryset in collector.fast_deletes:
            count = queryset.count()
            if count:
                cascades.append((queryset.model._meta.verbose_name_plural, count))
        return [], cascades

    def render_confirm(self, request, obj, blockers, cascades):
        shown = [
            {
                "object": blocker,
                "kind": blocker._meta.verbose_name,
                "url": object_url(type(blocker), "detail", blocker.pk),
            }
            for blocker in blockers[: self.protected_shown]
        ]
        context = {
            **self.model_context(request),
            "object": obj,
            "blockers": shown,
            "blocked": bool(blockers),
            "more_blockers": max(0, len(blockers) - self.protected_shown),
            "cascades": cascades,
            "cancel_url": safe_return_url(request, object_url(self.model, "detail", obj.pk)),
        }
        return render(
            request, self.template_name, context, status=409 if blockers and request.method == "POST" else 200
        )
