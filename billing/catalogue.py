"""The rate catalogue: system parameters and rate tables, cached in memory for rating many calls at once.

Used by the CDR ingest (every batch) and by re-rating (every chunk); both
rate a call through ``Catalog.rate``, so a call re-rated with unchanged rates
comes out as the ingest stored it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from callcore.contract import PARAMETERS_BY_NAME

from . import rating


def _epoch_ms(value) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


class Catalog:
    """The system parameters, each account's rate table and each rate table as a ``RateIndex``, in memory.

    Looking them up per record would cost a query each; per batch, a few
    queries and a scan of every rate. So they are kept, and checked again
    at most every ``recheck`` seconds: parameters and accounts are re-read,
    and each cached rate table is fingerprinted (row count, highest id, sum of
    the rows' xmin: any committed insert, delete or update of a rate changes
    it) and reloaded only if it changed. An account or rate table a batch
    needs and the cache has never seen is loaded at once.

    So a price edited in place applies to the records ingested from at most
    ``recheck`` seconds later, which is no different from the ingest running
    that much behind. A call is rated at the price in force when it is
    ingested unless validity dates say otherwise: a price change meant for
    calls from a given moment belongs in a new rate with ``valid_from``.
    """

    def __init__(self, recheck: float = 1.0):
        self.recheck = recheck
        self.params = rating.RatingParameters()
        self.low_balance_alarm = 0
        self.accounts: dict[int, int | None] = {}  # account id -> rate table id; None: none, or no such account
        self.missing: set[int] = set()
        self._rates: dict[int, tuple[tuple, rating.RateIndex]] = {}
        self._next_check = 0.0
        self.loads = 0  # rate tables (re)loaded, for the tests and the benchmark

    def prepare(self, cursor, account_ids: Iterable[int]) -> None:
        """Make sure everything the accounts ``account_ids`` need for rating is loaded and fresh enough."""
        due = time.monotonic() >= self._next_check
        wanted = {a for a in account_ids if a is not None}
        if due:
            self.params, self.low_balance_alarm = load_parameters(cursor)
            # Every account seen so far is looked up again with this batch's, in one query: forgetting
            # them instead cost a query in each of the next batches that named one (a dozen a second).
            lookup = sorted(wanted | self.accounts.keys())
        else:
            lookup = sorted(wanted - self.accounts.keys())
        if lookup:
            cursor.execute("SELECT id, rate_table_id FROM billing_account WHERE id = ANY(%s)", [lookup])
            found = dict(cursor.fetchall())
            self.accounts.update({a: found.get(a) for a in lookup})
            self.missing.difference_update(found)
            self.missing.update(a for a in lookup if a not in found)
        needed = {t for t in self.accounts.values() if t is not None}
        check = needed | self._rates.keys() if due else needed - self._rates.keys()
        if check:
            self._load_rates(cursor, sorted(check))
        if due:
            self._next_check = time.monotonic() + self.recheck

    def _load_rates(self, cursor, table_ids: list[int]) -> None:
        cursor.execute(
            """
            SELECT rate_table_id, count(*), max(id), sum(xmin::text::bigint)
            FROM billing_rate WHERE rate_table_id = ANY(%s) GROUP BY rate_table_id
            """,
            [table_ids],
        )
        prints = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        stale = [t for t in table_ids if t not in self._rates or self._rates[t][0] != prints.get(t)]
        if not stale:
            return
        cursor.execute(
            """
            SELECT rate_table_id, prefix, area, price_per_minute, first_period, next_period, connect_fee,
                   valid_from, valid_to
            FROM billing_rate WHERE rate_table_id = ANY(%s)
            """,
            [stale],
        )
        rates = defaultdict(list)
        for table_id, prefix, area, per_minute, first, nxt, connect_fee, valid_from, valid_to in cursor.fetchall():
            rates[table_id].append(
                rating.Rate(
                    prefix, area, per_minute, first, nxt, connect_fee, _epoch_ms(valid_from), _epoch_ms(valid_to)
                )
            )
        for table_id in stale:
            self._rates[table_id] = (prints.get(table_id), rating.RateIndex(rates.get(table_id, ())))
        self.loads += len(stale)

    def rates_of(self, account_id: int | None) -> rating.RateIndex | None:
        table_id = self.accounts.get(account_id) if account_id is not None else None
        return self._rates[table_id][1] if table_id is not None else None

    def expire(self) -> None:
        """Check everything again before the next batch."""
        self._next_check = 0.0

    def rate(
        self,
        *,
        callee_number: str,
        callee_number_out: str,
        start_ms: int,
        hold_time_ms: int,
        billing_mode: int,
        account_id: int | None,
        vendor_account_id: int | None,
        callee_number_routed: str = "",
    ) -> rating.Rating:
        """Rate one call against its accounts' tables as loaded (``prepare`` them first).

        A customer fee is charged only for the billing modes that bill an
        account (0-3); the vendor cost accrues whatever the mode, since the
        vendor carried the call. An account that does not exist rates at nothing.
        """
        return rating.rate_call(
            callee_number=callee_number,
            callee_number_out=callee_number_out,
            callee_number_routed=callee_number_routed,
            start_ms=start_ms,
            hold_time_ms=hold_time_ms,
            customer_rates=self.rates_of(account_id) if billing_mode >= 0 else None,
            vendor_rates=self.rates_of(vendor_account_id),
            params=self.params,
        )

    def rate_row(self, row) -> rating.Rating:
        """``rate`` of a CDR's columns (a mapping holding at least RATED_FROM)."""
        return self.rate(**{name: row[name] for name in RATED_FROM})


# The CDR columns a call is rated from (the callee as received, routed and sent: rating.rated_number picks).
RATED_FROM = (
    "callee_number", "callee_number_routed", "callee_number_out", "start_ms", "hold_time_ms", "billing_mode",
    "account_id", "vendor_account_id",
)  # fmt: skip


def load_parameters(cursor) -> tuple[rating.RatingParameters, int]:
    """The rating parameters and SS_CLIENT_LOW_BALANCE_ALARM, as stored now (a missing row is the default)."""
    cursor.execute("SELECT name, value FROM switching_systemparameter")
    stored = dict(cursor.fetchall())
    params = rating.RatingParameters.from_values(stored)
    try:
        alarm = int(PARAMETERS_BY_NAME["SS_CLIENT_LOW_BALANCE_ALARM"].parse(stored["SS_CLIENT_LOW_BALANCE_ALARM"]))
    except (KeyError, ValueError):
        alarm = 0
    return params, alarm
