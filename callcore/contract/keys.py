"""Every Redis key either side uses, named once under the deployment's prefix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NEVER_EXPIRES_MS",
    "Keys",
    "SnapshotKeys",
    "IpCountryKeys",
]


# A blacklist entry without an expiry: far enough ahead, and exact in a double.
NEVER_EXPIRES_MS = 2**52


@dataclass(frozen=True)
class Keys:
    """The live state, the CDR streams and the Best ASR figures.

    Slots, CPS windows and reservations are written by the call core's Lua
    (``callcore.live``); balances, the dynamic blacklist, the route figures and
    the CDR streams are the hand-over points between the sides.
    """

    prefix: str

    # -- the call core's counters

    def slots(self, kind: str, ident) -> str:
        """Sorted set of the calls holding a slot of ``kind`` (mgw, account, phone, rgw), score = expiry ms."""
        return f"{self.prefix}:live:slots:{kind}:{ident}"

    def call_slots(self, account_id, mapping_gateway_id, phone_id, route_gateway_ids, caller: str = "") -> list[str]:
        """Every slot key a call may hold: its teardown removes the call from each (``caller``: its number's
        live calls, counted for the concurrent-caller rule when it is judged)."""
        keys = [self.slots("account", account_id)]
        if caller:
            keys.append(self.fraud_window("concurrent_caller", caller))
        if mapping_gateway_id is not None:
            keys.append(self.slots("mgw", mapping_gateway_id))
        if phone_id is not None:
            keys.append(self.slots("phone", phone_id))
        keys.extend(self.slots("rgw", gateway_id) for gateway_id in route_gateway_ids)
        return keys

    def cps(self, kind: str, ident) -> str:
        """Prefix of the per-second call counters (``{key}:{epoch second}``)."""
        return f"{self.prefix}:live:cps:{kind}:{ident}"

    def reservations(self, account_id) -> str:
        """Hash of the account's live calls' reservations; ``:sum`` and ``:exp`` beside it."""
        return f"{self.prefix}:live:resv:{account_id}"

    @property
    def live_calls(self) -> str:
        """Hash of every live call (call id -> registry JSON), on every node."""
        return f"{self.prefix}:live:calls"

    @property
    def live_calls_expiry(self) -> str:
        """The live calls' expiry index (sorted set, score = expiry ms), to drop a crashed node's calls."""
        return f"{self.prefix}:live:calls:expiry"

    @property
    def live_answered(self) -> str:
        """Hash of the live calls answered (call id -> ``AnsweredCall``), so a call its node loses is charged for
        its talk (contract.lost); the Lua of callcore.live names it as the registry's key + ``:answered``."""
        return f"{self.live_calls}:answered"

    @property
    def heartbeats(self) -> str:
        """Hash of call-core nodes -> their last heartbeat (epoch ms, every HEARTBEAT_INTERVAL_S): where a lost
        call's charge ends, and how the worker finds a node that is gone (billing.lost_calls)."""
        return f"{self.prefix}:live:heartbeats"

    def grants(self, node: str) -> str:
        """A node's renewal index of its answered calls' quota grants (sorted set, call id -> due ms); the
        grants themselves (call id -> ``decide.Grant``) in the hash ``{key}:calls``, named so by the Lua."""
        return f"{self.prefix}:live:grants:{node}"

    @property
    def stats(self) -> str:
        """Hash of switch-wide counters (scanner requests dropped)."""
        return f"{self.prefix}:stats"

    # -- source-IP bans (contract.bans), written by any node, released by the portal

    def ban(self, ip: str) -> str:
        """Hash of one source's ban (``BanRecord``'s fields); it expires with the ban."""
        return f"{self.prefix}:ban:ip:{ip}"

    @property
    def bans(self) -> str:
        """Sorted set of the banned sources, score = expiry ms: the nodes' caches and the firewall export."""
        return f"{self.prefix}:bans"

    @property
    def bans_version(self) -> str:
        """Moved by every ban and release: each node reloads its cache of ``bans`` when it changes."""
        return f"{self.prefix}:bans:version"

    def ban_offences(self, ip: str) -> str:
        """How often a source was banned within a day (``BAN_OFFENCE_MEMORY_S``): each ban doubles the next."""
        return f"{self.prefix}:ban:offences:{ip}"

    def ban_counter(self, cause: str, subject: str) -> str:
        """Hash counting one cause's offences of a source or username (``n``, ``first_ms``) in its window."""
        return f"{self.prefix}:ban:count:{cause}:{subject}"

    # -- written by the worker or the portal, read by the call core

    def balance(self, account_id: int) -> str:
        """An account's balance in money units (integer), refreshed by the CDR ingest."""
        return f"{self.prefix}:live:balance:{account_id}"

    def dynamic_blacklist(self, mapping_gateway_id: int | None = None) -> str:
        """Sorted set of blocked numbers, score = expiry in epoch ms; per gateway in standalone mode."""
        if mapping_gateway_id is None:
            return f"{self.prefix}:dynbl:central"
        return f"{self.prefix}:dynbl:gw:{mapping_gateway_id}"

    @property
    def fraud_exempt(self) -> str:
        """Sorted set of exempt blacklist subjects (contract.fraud), score = exemption expiry epoch ms: a subject
        with a future score is never added to the dynamic blacklist by a rule (an admin released it)."""
        return f"{self.prefix}:fraud:exempt"

    @property
    def fraud_daily_spend(self) -> str:
        """Hash of each account's average daily vendor cost (money units), the spend-velocity rule's base;
        written by the worker."""
        return f"{self.prefix}:fraud:daily"

    def fraud_destinations(self, account_id: int) -> str:
        """Hash of the country codes an account has called (field = code, value = first call ms; ``_since`` = its
        first call at all), for the new-destination rule."""
        return f"{self.prefix}:fraud:dest:{account_id}"

    def fraud_window(self, rule: str, subject: str) -> str:
        """A fraud rule's sliding window for one subject (sorted set, member = call id, score = epoch ms)."""
        return f"{self.prefix}:fraud:win:{rule}:{subject}"

    @property
    def registrations(self) -> str:
        """Hash of the contacts every node's REGISTERs saved (``registration_field`` -> ``Registration``)."""
        return f"{self.prefix}:live:registrations"

    @property
    def registrations_expiry(self) -> str:
        """The registrations' expiry index (sorted set, member = field, score = expiry ms)."""
        return f"{self.prefix}:live:registrations:expiry"

    def disconnects(self, node: str) -> str:
        """List of requests to end live calls held by ``node`` (JSON ``{"call_id", "end_reason", "by"}``);
        the node's own timer pops them and ends each call with BYE both ways."""
        return f"{self.prefix}:live:disconnects:{node}"

    def route_stats_minute(self, minute: int) -> str:
        """Hash of one minute's vendor attempts (field ``a:{gateway id}``) and connected calls (``c:{id}``),
        by the calls' start (``epoch ms // 60000``); the CDR ingest counts them."""
        return f"{self.prefix}:routestats:{minute}"

    @property
    def route_asr(self) -> str:
        """The routing gateways' attempts and connected calls over the ASR window (``RouteStats``), published
        by the worker for the Best ASR route policy; it expires when the worker stops publishing."""
        return f"{self.prefix}:routestats:asr"

    # -- written by the call core, read by the worker

    @property
    def cdr_stream(self) -> str:
        """The CDR stream (field ``cdr``: one ``CdrRecord``), read by the ingest's consumer group."""
        return f"{self.prefix}:cdr"

    @property
    def fraud_events(self) -> str:
        """Stream of fraud detections (field ``e``: ``contract.fraud.encode_event``), XADDed by whoever detects
        (call core or ingest, MAXLEN ~ FRAUD_EVENTS_MAXLEN), read by the worker's consumer group."""
        return f"{self.prefix}:fraud:events"

    @property
    def cdr_dead_letters(self) -> str:
        """The records the ingest could not store, with why, kept until an operator acts."""
        return f"{self.prefix}:cdr:dead"


@dataclass(frozen=True)
class SnapshotKeys:
    """Where the configuration snapshot lives."""

    prefix: str

    @property
    def version(self) -> str:
        return f"{self.prefix}:snapshot:version"

    @property
    def current(self) -> str:
        return f"{self.prefix}:snapshot:current"

    @property
    def digest(self) -> str:
        return f"{self.prefix}:snapshot:digest"

    @property
    def lock(self) -> str:
        return f"{self.prefix}:snapshot:lock"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:snapshot"

    @property
    def blob_prefix(self) -> str:
        return f"{self.prefix}:snapshot:"

    def blob(self, version: int) -> str:
        return f"{self.blob_prefix}{version}"

    # After a blob's key, the key of its HMAC (contract.signing): the call core installs no blob without it.
    signature_suffix = ":sig"

    def signature(self, version: int) -> str:
        return f"{self.blob(version)}{self.signature_suffix}"


@dataclass(frozen=True)
class IpCountryKeys:
    """Where the IP-to-country table lives: the blob and the version that names it."""

    prefix: str

    @property
    def version(self) -> str:
        """A short digest of the blob: the call core fetches the blob only when it changes."""
        return f"{self.prefix}:ipcountry:version"

    @property
    def blob(self) -> str:
        return f"{self.prefix}:ipcountry:blob"
