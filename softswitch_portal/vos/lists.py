"""Number groups (VOS LimitE164Group): the black/white list groups and their full-number entries.

A group's ``name`` and ``memo`` (its description). VOS groups have no kind:
the gateway using one says allow or deny; here a group is a black or white
list, so CreateLimitE164Group takes an optional ``kind`` ("black", the
default, or "white"), an extension of the manual. Entries are full numbers
(``e164``, ``memo`` the note); prefix entries are the portal's.
"""

from django.db import transaction

from security.api_clients import APIScope
from security.choices import ListKind, MatchKind
from security.models import BlackWhiteListGroup, ListEntry

from . import fields
from .codes import RetCode, VosError, invalid, not_found
from .customers import save
from .gateways import delete
from .registry import action


def find_group(name, field="name"):
    group = BlackWhiteListGroup.objects.filter(name=name).first()
    if group is None:
        raise not_found(f"no number group {name!r} ({field})")
    return group


@action("CreateLimitE164Group", APIScope.WRITE)
def create_limit_e164_group(call, body):
    name = fields.string(body, "name", allow_empty=False)
    kind = fields.string(body, "kind", default=ListKind.BLACK)
    if kind not in ListKind.values:
        raise invalid("kind", "black or white.")
    if BlackWhiteListGroup.objects.filter(name=name).exists():
        raise VosError(RetCode.ALREADY_EXISTS, f"number group {name!r} already exists.")
    save(BlackWhiteListGroup(name=name, kind=kind, description=fields.string(body, "memo", default="")))
    return {}


@action("ModifyLimitE164Group", APIScope.WRITE)
def modify_limit_e164_group(call, body):
    group = find_group(fields.string(body, "name", allow_empty=False))
    if "memo" in body:
        group.description = fields.string(body, "memo")
    save(group)
    return {}


@action("DeleteLimitE164Group", APIScope.WRITE)
def delete_limit_e164_group(call, body):
    return delete(find_group(fields.string(body, "name", allow_empty=False)))


@action("GetLimitE164Group")
def get_limit_e164_group(call, body):
    names = fields.strings(body, "names", default=None)
    queryset = BlackWhiteListGroup.objects.order_by("name")
    if names:
        queryset = queryset.filter(name__in=names)
    return {"infoLimitE164Groups": [{"name": g.name, "memo": g.description} for g in queryset]}


@action("CreateLimitE164", APIScope.WRITE)
def create_limit_e164(call, body):
    group = find_group(fields.string(body, "limitE164GroupName", allow_empty=False), "limitE164GroupName")
    entries = body.get("infoLimitE164s")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise invalid("infoLimitE164s", "must be a non-empty array of {e164, memo}.")
    with transaction.atomic():
        for index, entry in enumerate(entries):
            number = fields.string(entry, "e164", allow_empty=False)
            row = ListEntry(group=group, number=number, match=MatchKind.EXACT,
                            note=fields.string(entry, "memo", default="")[:200])  # fmt: skip
            if ListEntry.objects.filter(group=group, number=number, match=MatchKind.EXACT).exists():
                continue  # already listed: adding it again changes nothing
            try:
                save(row)
            except VosError as exc:
                raise invalid(f"infoLimitE164s[{index}].e164", exc.message) from None
    return {}


@action("DeleteLimitE164", APIScope.WRITE)
def delete_limit_e164(call, body):
    group = find_group(fields.string(body, "limitE164GroupName", allow_empty=False), "limitE164GroupName")
    numbers = fields.strings(body, "e164s")
    deleted, _ = ListEntry.objects.filter(group=group, match=MatchKind.EXACT, number__in=numbers).delete()
    if not deleted:
        raise not_found(f"none of {', '.join(numbers)} in number group {group} (e164s)")
    return {}


@action("GetLimitE164")
def get_limit_e164(call, body):
    group = find_group(fields.string(body, "limitE164GroupName", allow_empty=False), "limitE164GroupName")
    numbers = fields.comma_list(fields.string(body, "e164", default=""))
    entries = ListEntry.objects.filter(group=group, match=MatchKind.EXACT).order_by("number")
    if numbers:
        entries = entries.filter(number__in=numbers)
    return {"infoLimitE164s": [{"e164": e.number, "memo": e.note} for e in entries]}
