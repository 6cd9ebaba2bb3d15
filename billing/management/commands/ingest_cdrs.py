"""The CDR ingest worker: reads the call core's CDR stream, rates, stores and charges (billing.ingest.consumer).

A long-running loop, stopped by SIGTERM or SIGINT between batches; the
Procfile's ``ingest`` line starts it.
"""

import logging
import signal
import socket

from django.core.management.base import BaseCommand
from django.db import connection

from billing.ingest import Ingester

log = logging.getLogger("billing.ingest")


class Command(BaseCommand):
    help = "Ingest CDRs from the Redis stream into PostgreSQL: rate them and move balances, nothing lost."

    def add_arguments(self, parser):
        parser.add_argument(
            "--consumer",
            default=socket.gethostname(),
            help="Consumer name in the stream's group (default: the host name). Give each worker its own; "
            "a worker restarted under the same name resumes the entries it left pending at once.",
        )
        parser.add_argument("--batch-size", type=int, default=500, help="Most records per transaction.")
        parser.add_argument("--block-ms", type=int, default=1000, help="How long one read waits for new records.")
        parser.add_argument(
            "--claim-idle-ms",
            type=int,
            default=60_000,
            help="Claim entries another consumer left pending this long (longer than any batch takes).",
        )
        parser.add_argument("--claim-every", type=float, default=15.0, help="Seconds between claim sweeps.")
        parser.add_argument("--drain", action="store_true", help="Exit once the stream has nothing left to read.")

    def handle(self, *args, consumer, batch_size, block_ms, claim_idle_ms, claim_every, drain, **options):
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        # Named, so an operator (and the tests) can tell this worker's sessions apart in pg_stat_activity.
        connection.settings_dict["OPTIONS"] = {
            **connection.settings_dict.get("OPTIONS", {}),
            "application_name": f"ss-ingest:{consumer}"[:63],
        }
        ingester = Ingester(
            consumer,
            batch_size=batch_size,
            block_ms=block_ms,
            claim_idle_ms=claim_idle_ms,
            claim_every=claim_every,
        )
        log.info("CDR ingest %r reading %s in batches of %d", consumer, ingester.stream, batch_size)
        totals = ingester.run(lambda: self.stopping, drain=drain)
        log.info(
            "CDR ingest %r stopped: %d read, %d inserted, %d duplicates, %d dead letters",
            consumer,
            totals.read,
            totals.inserted,
            totals.duplicates,
            totals.dead,
        )

    def _stop(self, signum, frame):
        self.stopping = True
