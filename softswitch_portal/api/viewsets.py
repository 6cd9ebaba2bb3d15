"""The base of every API viewset: a model's queryset, its list page's FilterSet, ordering, and safe deletes."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models.deletion import ProtectedError, RestrictedError
from rest_framework import status, viewsets
from rest_framework.response import Response

from .serializers import as_drf_error


class PortalViewSetMixin:
    """What every API viewset shares: the list page's filterset, ordering, transactional writes."""

    # ``filterset_class`` is the list page's own FilterSet: one definition of each filter for the page and the
    # API. Writes run in one transaction, so a service's ValidationError raised while saving leaves nothing
    # behind and answers 400 naming the field.
    filterset_class = None
    ordering_fields = "__all__"

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)

    def _save(self, serializer):
        try:
            with transaction.atomic():
                serializer.save()
        except DjangoValidationError as exc:
            raise as_drf_error(exc) from None


class BaseModelViewSet(PortalViewSetMixin, viewsets.ModelViewSet):
    """List (with the portal's filters and ``?ordering=``), read, create, update, delete."""

    def destroy(self, request, *args, **kwargs):
        instance = self.get_object()
        try:
            with transaction.atomic():
                instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            shown = [f"{obj._meta.verbose_name} {obj}" for obj in list(blockers)[:20]]
            return Response(
                {"detail": f"{instance} is still used by: {', '.join(shown)}.", "blocked_by": shown},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReadOnlyModelViewSet(PortalViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """List (with the portal's filters and ``?ordering=``) and read: records the switch writes, which no API
    client deletes (the safe delete lives on BaseModelViewSet: here it would route DELETE to CDRs)."""
