"""Publishes the configuration snapshot to Redis after every committed change.

A watched model changes -> ``schedule_publish`` queues one publish for the end
of the transaction -> ``publish`` reads every table the call core needs in one
consistent read, encodes it with ``callcore.contract`` and installs it in Redis
as a new version in one atomic step, then tells the call cores on a channel.

Bulk operations that send no signals (``bulk_create``, ``QuerySet.update``)
must call ``schedule_publish()`` themselves. Outside ``transaction.atomic()``
every save publishes on its own, so views should save inside one.

The models are looked up by label, never imported: every app may import this
module, and the core app's ready() watches CONFIGURATION_MODELS.
"""

import hashlib
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from callcore import contract
from security.choices import MatchKind

from .redis import Waiter, redis_client
from .redis import prefix as key_prefix

logger = logging.getLogger(__name__)

# A superseded blob only has to outlive a loader that read `current` just
# before the switch; an hour also leaves time to inspect what a recent CDR was
# decided under, without keeping a day of ~1 MB blobs through an editing spree.
SUPERSEDED_TTL_SECONDS = 3600
# The lock serialises build+publish across portal processes: see publish().
LOCK_TIMEOUT_SECONDS = 120
LOCK_WAIT_SECONDS = 30

# What the snapshot is built from: a committed change to any of these publishes.
CONFIGURATION_MODELS = (
    "billing.Account",
    "billing.RateTable",
    "billing.Rate",
    "security.BlackWhiteListGroup",
    "security.ListEntry",
    "switching.MappingGateway",
    "switching.RoutingGateway",
    "switching.Phone",
    "switching.NumberTransformRule",
    "switching.RoutingSchedule",
    "switching.CallerNumberPool",
    "core.SystemParameter",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Why a Lua script and not MULTI: the blob's key is named after the version
# INCR returns, and inside MULTI that result only exists once EXEC has run.
# WATCH + retry would work but costs round trips and can starve under
# concurrent publishes. A script runs as one step: no reader ever sees
# `current` naming a blob that is not there yet, and subscribers hear of a
# version only once it is readable. (It writes a key it computes, which Redis
# Cluster would refuse; the switch uses a single Redis, or Sentinel.)
#
# KEYS: version counter, current pointer, digest of the current blob.
# ARGV: blob key prefix, blob, its digest, channel, superseded TTL, force (1/0), the blob's signature,
# the signature key's suffix (contract.SnapshotKeys.signature).
# Returns {version now current, 1 if this call installed it else 0}.
_PUBLISH_LUA = """
local current = redis.call('GET', KEYS[2])
if ARGV[6] ~= '1' and current and redis.call('GET', KEYS[3]) == ARGV[3]
   and redis.call('EXISTS', ARGV[1] .. current, ARGV[1] .. current .. ARGV[8]) == 2 then
  return {tonumber(current), 0}
end
local version = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. version, ARGV[2])
redis.call('SET', ARGV[1] .. version .. ARGV[8], ARGV[7])
redis.call('SET', KEYS[2], version)
redis.call('SET', KEYS[3], ARGV[3])
if current and tonumber(current) ~= version then
  redis.call('EXPIRE', ARGV[1] .. current, tonumber(ARGV[5]))
  redis.call('EXPIRE', ARGV[1] .. current .. ARGV[8], tonumber(ARGV[5]))
end
redis.call('PUBLISH', ARGV[4], version)
return {version, 1}
"""


# ---------------------------------------------------------------------------
# Watching changes


def _publish_after_commit():
    publish()


def schedule_publish(**kwargs):
    """Queue one publish for the end of the current transaction, however many rows it changed.

    Whether one is queued is read from the connection's own list of on-commit
    hooks rather than from a flag of ours: Django drops a hook when its
    transaction or savepoint rolls back, where a flag would stay set and stop
    that thread from ever publishing again.
    """
    using = kwargs.get("using")
    connection = transaction.get_connection(using)
    if connection.in_atomic_block and any(hook[1] is _publish_after_commit for hook in connection.run_on_commit):
        return
    # robust: a failed publish is logged and must not turn a committed save into an error page.
    transaction.on_commit(_publish_after_commit, using=using, robust=True)


def watch(*models):
    """Publish after any committed save, delete or many-to-many change of these models."""
    for model in models:
        post_save.connect(schedule_publish, sender=model, dispatch_uid=f"publish-save-{model.__name__}")
        post_delete.connect(schedule_publish, sender=model, dispatch_uid=f"publish-delete-{model.__name__}")
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(
                schedule_publish,
                sender=field.remote_field.through,
                dispatch_uid=f"publish-m2m-{model.__name__}-{field.name}",
            )


# ---------------------------------------------------------------------------
# Building


def _ms(value):
    return None if value is None else (value - _EPOCH) // _MS


def _parameters(rows):
    values = contract.default_parameters()
    for name, raw in rows:
        declaration = contract.PARAMETERS_BY_NAME.get(name)
        if declaration is None:
            logger.warning("system parameter %s is not declared in callcore.contract: left out of the snapshot", name)
            continue
        try:
            values[declaration.name] = declaration.parse(raw)
        except ValueError as exc:
            logger.error("system parameter %s: %s; publishing its default %r", name, exc, declaration.default)
    return values


def _links(model, field_name):
    """{owner id: [target ids]} of one many-to-many field, in one query on its through table."""
    field = model._meta.get_field(field_name)
    through = field.remote_field.through
    links = defaultdict(list)
    rows = through.objects.order_by("id").values_list(
        f"{field.m2m_field_name()}_id", f"{field.m2m_reverse_field_name()}_id"
    )
    for owner_id, target_id in rows:
        links[owner_id].append(target_id)
    return links


def build_snapshot():
    """Serialise the configuration into a ``callcore.contract.Snapshot``.

    A fixed number of queries whatever the row counts (values_list, no model
    instances), every collection in id order so an unchanged configuration
    encodes to the same bytes and is not published again.
    """

    Account, Rate, RateTable = (apps.get_model("billing", name) for name in ("Account", "Rate", "RateTable"))
    BlackWhiteListGroup, ListEntry = (apps.get_model("security", name) for name in ("BlackWhiteListGroup", "ListEntry"))
    CallerNumberPool, MappingGateway, NumberTransformRule, Phone, RoutingGateway, RoutingSchedule = (
        apps.get_model("switching", name)
        for name in (
            "CallerNumberPool",
            "MappingGateway",
            "NumberTransformRule",
            "Phone",
            "RoutingGateway",
            "RoutingSchedule",
        )
    )
    SystemParameter = apps.get_model("core", "SystemParameter")

    realm = getattr(settings, "SIP_REALM", contract.SIP_REALM)

    accounts = tuple(
        contract.Account(
            id=pk,
            name=name,
            account_type=account_type,
            balance=str(balance),
            credit_limit=str(credit_limit),
            locked=locked,
            anti_overdraft=anti_overdraft,
            capacity=capacity,
            rate_table_id=rate_table_id,
            high_risk_exempt=high_risk_exempt,
        )
        for pk, name, account_type, balance, credit_limit, locked, anti_overdraft, capacity, rate_table_id, high_risk_exempt in (  # noqa: E501
            Account.objects.order_by("id").values_list(
                "id",
                "name",
                "account_type",
                "balance",
                "credit_limit",
                "locked",
                "anti_overdraft",
                "capacity",
                "rate_table_id",
                "high_risk_exempt",
            )
        )
    )

    rates = defaultdict(list)
    rate_rows = Rate.objects.order_by("rate_table_id", "prefix", "valid_from", "id").values_list(
        "rate_table_id",
        "prefix",
        "area",
        "price_per_minute",
        "first_period",
        "next_period",
        "connect_fee",
        "valid_from",
        "valid_to",
    )
    for table_id, prefix, area, price, first_period, next_period, connect_fee, valid_from, valid_to in rate_rows:
        rates[table_id].append(
            contract.Rate(
                prefix=prefix,
                area=area,
                price_per_minute=str(price),
                first_period=first_period,
                next_period=next_period,
                connect_fee=str(connect_fee),
                valid_from_ms=_ms(valid_from),
                valid_to_ms=_ms(valid_to),
            )
        )
    rate_tables = tuple(
        contract.RateTable(id=pk, name=name, currency=currency, rates=tuple(rates.get(pk, ())))
        for pk, name, currency in RateTable.objects.order_by("id").values_list("id", "name", "currency")
    )

    # Rules in the order a gateway tries them: ascending priority, then name.
    rules = {
        pk: contract.TransformRule(
            id=pk,
            name=name,
            match_prefix=match_prefix,
            min_length=min_length,
            max_length=max_length,
            strip_digits=strip_digits,
            prepend=prepend,
        )
        for pk, name, match_prefix, min_length, max_length, strip_digits, prepend in (
            NumberTransformRule.objects.order_by("priority", "name", "id").values_list(
                "id", "name", "match_prefix", "min_length", "max_length", "strip_digits", "prepend"
            )
        )
    }
    rule_rank = {pk: rank for rank, pk in enumerate(rules)}

    def transforms(links, owner_id):
        return tuple(rules[pk] for pk in sorted(links.get(owner_id, ()), key=rule_rank.__getitem__))

    mg_caller_rules = _links(MappingGateway, "caller_transforms")
    mg_callee_rules = _links(MappingGateway, "callee_transforms")
    mg_caller_lists = _links(MappingGateway, "caller_list_groups")
    mg_callee_lists = _links(MappingGateway, "callee_list_groups")
    mapping_gateways = tuple(
        contract.MappingGateway(
            id=pk,
            name=name,
            account_id=account_id,
            remote_ips=tuple(remote_ips),
            auth_mode=auth_mode,
            remote_port=remote_port,
            capacity=capacity,
            cps_limit=cps_limit,
            caller_transforms=transforms(mg_caller_rules, pk),
            callee_transforms=transforms(mg_callee_rules, pk),
            caller_list_group_ids=tuple(sorted(mg_caller_lists.get(pk, ()))),
            callee_list_group_ids=tuple(sorted(mg_callee_lists.get(pk, ()))),
            prefix_allow=tuple(prefix_allow),
            prefix_forbid=tuple(prefix_forbid),
            conversation_limit=conversation_limit,
            dynamic_blacklist_standalone=standalone,
            route_policy=route_policy,
            enabled=enabled,
            require_caller_number=require_caller_number,
            high_risk_exempt=high_risk_exempt,
            media_proxy=media_proxy,
        )
        for (
            pk,
            name,
            account_id,
            remote_ips,
            auth_mode,
            remote_port,
            capacity,
            cps_limit,
            prefix_allow,
            prefix_forbid,
            conversation_limit,
            standalone,
            route_policy,
            enabled,
            require_caller_number,
            high_risk_exempt,
            media_proxy,
        ) in MappingGateway.objects.order_by("id").values_list(
            "id",
            "name",
            "account_id",
            "remote_ips",
            "auth_mode",
            "remote_port",
            "capacity",
            "cps_limit",
            "prefix_allow",
            "prefix_forbid",
            "conversation_limit",
            "dynamic_blacklist_standalone",
            "route_policy",
            "enabled",
            "require_caller_number",
            "high_risk_exempt",
            "media_proxy",
        )
    )

    pools = {
        pk: contract.CallerNumberPool(id=pk, name=name, numbers=tuple(numbers), mode=mode)
        for pk, name, numbers, mode in CallerNumberPool.objects.order_by("id").values_list(
            "id", "name", "numbers", "mode"
        )
    }
    rg_caller_rules = _links(RoutingGateway, "caller_transforms")
    rg_callee_rules = _links(RoutingGateway, "callee_transforms")
    rg_schedules = _links(RoutingGateway, "schedules")
    routing_gateways = tuple(
        contract.RoutingGateway(
            id=pk,
            name=name,
            host=host,
            port=port,
            transport=transport,
            prefixes=tuple(prefixes),
            tech_prefix=tech_prefix,
            priority=priority,
            capacity=capacity,
            cps_limit=cps_limit,
            clearing_account_id=clearing_account_id,
            caller_transforms=transforms(rg_caller_rules, pk),
            callee_transforms=transforms(rg_callee_rules, pk),
            schedule_ids=tuple(sorted(rg_schedules.get(pk, ()))),
            caller_number_pool=pools.get(pool_id),
            failover_codes=tuple(failover_codes),
            conversation_limit=conversation_limit,
            dynamic_blacklist_standalone=standalone,
            enabled=enabled,
            media_proxy=media_proxy,
        )
        for (
            pk,
            name,
            host,
            port,
            transport,
            prefixes,
            tech_prefix,
            priority,
            capacity,
            cps_limit,
            clearing_account_id,
            pool_id,
            failover_codes,
            conversation_limit,
            standalone,
            enabled,
            media_proxy,
        ) in RoutingGateway.objects.order_by("id").values_list(
            "id",
            "name",
            "host",
            "port",
            "transport",
            "prefixes",
            "tech_prefix",
            "priority",
            "capacity",
            "cps_limit",
            "clearing_account_id",
            "caller_number_pool_id",
            "failover_codes",
            "conversation_limit",
            "dynamic_blacklist_standalone",
            "enabled",
            "media_proxy",
        )
    )

    routing_schedules = tuple(
        contract.RoutingSchedule(
            id=pk,
            name=name,
            weekdays=tuple(sorted(set(weekdays))),
            start_minute=start.hour * 60 + start.minute,
            end_minute=end.hour * 60 + end.minute,
        )
        for pk, name, weekdays, start, end in RoutingSchedule.objects.order_by("id").values_list(
            "id", "name", "weekdays", "start_time", "end_time"
        )
    )

    phones = tuple(
        contract.Phone(
            id=pk,
            username=username,
            ha1=ha1,
            ha1b=ha1b,
            account_id=account_id,
            capacity=capacity,
            allowed_networks=tuple(allowed_networks),
            allowed_countries=tuple(allowed_countries),
            enabled=enabled,
            test_phone=test_phone,
        )
        # Only the hashes: the portal keeps no password to hash (switching.Phone).
        for pk, username, ha1, ha1b, account_id, capacity, allowed_networks, allowed_countries, enabled, test_phone in (
            Phone.objects.order_by("id").values_list(
                "id",
                "username",
                "ha1",
                "ha1b",
                "account_id",
                "capacity",
                "allowed_networks",
                "allowed_countries",
                "enabled",
                "test_phone",
            )
        )
    )

    numbers = defaultdict(list)
    prefixes = defaultdict(list)
    # Unordered, then sorted here: PostgreSQL's sort spills to disk at the default work_mem (bench/README.md).
    for group_id, match, number in ListEntry.objects.order_by().values_list("group_id", "match", "number"):
        (prefixes if match == MatchKind.PREFIX else numbers)[group_id].append(number)
    list_groups = tuple(
        contract.ListGroup(
            id=pk,
            name=name,
            kind=kind,
            numbers=tuple(sorted(numbers.get(pk, ()))),
            prefixes=tuple(sorted(prefixes.get(pk, ()))),
        )
        for pk, name, kind in BlackWhiteListGroup.objects.order_by("id").values_list("id", "name", "kind")
    )

    return contract.Snapshot(
        schema_version=contract.SNAPSHOT_SCHEMA_VERSION,
        sip_realm=realm,
        time_zone=settings.TIME_ZONE,
        parameters=_parameters(SystemParameter.objects.order_by("name").values_list("name", "value")),
        accounts=accounts,
        rate_tables=rate_tables,
        mapping_gateways=mapping_gateways,
        routing_gateways=routing_gateways,
        phones=phones,
        list_groups=list_groups,
        routing_schedules=routing_schedules,
    )


def _build_consistent():
    """build_snapshot() in one REPEATABLE READ transaction when not already inside one.

    Its ~20 queries would otherwise each see the latest commit, and a gateway
    created between two of them could reference an account the snapshot does
    not hold: the call cores would rightly refuse the blob.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block or connection.vendor != "postgresql":
        return build_snapshot()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return build_snapshot()


# ---------------------------------------------------------------------------
# Publishing


@lru_cache(maxsize=8)
def _connection(url, waiter):
    client = redis_client(waiter, name="portal:publisher")
    return client, client.register_script(_PUBLISH_LUA)


def connection(waiter: Waiter = Waiter.PAGE):
    """(client, publish script) of settings.REDIS_URL, kept for the process: one connection pool per waiter."""
    return _connection(settings.REDIS_URL, waiter)


def snapshot_keys():
    return contract.SnapshotKeys(key_prefix())


def signing_key() -> bytes:
    """settings.SNAPSHOT_SIGNING_KEY as the HMAC key; contract.SignatureError when it is missing or too short."""
    return contract.signing_key(settings.SNAPSHOT_SIGNING_KEY)


def publish_blob(client, script, keys, blob, *, force=False):
    """Install ``blob`` and its signature as the current snapshot; returns (version now current, whether it is new).

    An unchanged blob (same digest, its keys still there) installs nothing,
    unless ``force``: the periodic republish refills a Redis that lost its
    data without minting a version every five minutes. The digest covers the
    signature too, so a new signing key publishes the same configuration anew.
    Raises contract.SignatureError without a usable SNAPSHOT_SIGNING_KEY: the
    call cores would refuse an unsigned blob anyway.
    """
    signature = contract.sign_snapshot(signing_key(), blob)
    digest = hashlib.sha256(blob + signature).hexdigest()
    ttl = getattr(settings, "SNAPSHOT_SUPERSEDED_TTL", SUPERSEDED_TTL_SECONDS)
    version, installed = script(
        keys=[keys.version, keys.current, keys.digest],
        args=[
            keys.blob_prefix,
            blob,
            digest,
            keys.channel,
            ttl,
            "1" if force else "0",
            signature,
            keys.signature_suffix,
        ],
        client=client,
    )
    return int(version), bool(installed)


def publish(*, force=False, waiter: Waiter = Waiter.PAGE):
    """Build the snapshot and make it current in Redis; returns its version, or None if Redis failed.

    ``waiter``: a publish on commit runs inside a web request (PAGE); tasks and commands pass JOB.

    Build and install happen under a Redis lock so that of two commits, the
    later build is also the later version: without it a slow build that
    started before a concurrent commit could land last and hide that commit
    until the next publish. A Redis failure is logged, not raised: the
    configuration is safe in PostgreSQL and the periodic republish
    (switching.tasks.republish_snapshot) catches up.
    """
    keys = snapshot_keys()
    try:
        client, script = connection(waiter)
        with client.lock(keys.lock, timeout=LOCK_TIMEOUT_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS):
            blob = contract.encode_snapshot(_build_consistent())
            version, installed = publish_blob(client, script, keys, blob, force=force)
    except (redis.RedisError, contract.SignatureError) as exc:
        logger.error(
            "snapshot not published to %s (%s: %s); the periodic republish will retry",
            keys.current,
            type(exc).__name__,
            exc,
        )
        return None
    if installed:
        logger.info("snapshot version %s published (%d bytes)", version, len(blob))
    return version
