"""Publish the configuration snapshot to Redis now (after a restore, a bulk import, or to check Redis)."""

from django.core.management.base import BaseCommand, CommandError

from callcore import contract
from security import ip_countries
from softswitch_portal.core import publisher
from softswitch_portal.core.redis import Waiter


class Command(BaseCommand):
    help = "Build the configuration snapshot and make it current in Redis, with the IP-country table if imported."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Install a new version even if the configuration is unchanged (call cores reload).",
        )

    def handle(self, *args, force=False, **options):
        try:
            publisher.signing_key()
        except contract.SignatureError as exc:
            raise CommandError(f"Could not publish the snapshot: {exc}.") from exc
        version = publisher.publish(force=force, waiter=Waiter.JOB)
        if version is None:
            raise CommandError("Could not publish the snapshot: Redis is unreachable (see the log above).")
        keys = publisher.snapshot_keys()
        self.stdout.write(self.style.SUCCESS(f"Snapshot version {version} is current at {keys.current}."))
        table = ip_countries.current()
        published = ip_countries.publish()  # also clears a table Redis holds that the database no longer has
        if table is not None:
            if published is None:
                raise CommandError("Could not publish the IP-country table: Redis is unreachable (see the log above).")
            self.stdout.write(self.style.SUCCESS(f"IP-country table {table.version} is current."))
