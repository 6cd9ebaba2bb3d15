"""Import the registries' delegated statistics as the IP-to-country table of the phones' geofence."""

from django.core.management.base import BaseCommand, CommandError

from security import ip_countries


class Command(BaseCommand):
    help = (
        "Replace the IP-to-country table (the phones' allowed countries) with the ranges of the regional "
        "registries' delegated statistics files (delegated-<registry>-extended-latest, gzip or not; files or "
        "http(s)/ftp URLs). All files are read and checked before anything is stored: a bad line anywhere "
        "leaves the table imported before in place. Where blocks of different countries overlap, the one "
        "read later (files in the order given) wins."
    )

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="+", metavar="FILE", help="delegated statistics file or URL")

    def handle(self, *args, sources, **options):
        try:
            row, table, published = ip_countries.import_files(sources)
        except (ip_countries.DelegatedFileError, ValueError) as exc:
            raise CommandError(f"Nothing imported: {exc}") from None
        for conflict in table.conflicts:
            self.stderr.write(self.style.WARNING(f"overlap: {conflict}"))
        if table.conflict_count > len(table.conflicts):
            self.stderr.write(self.style.WARNING(f"... {table.conflict_count - len(table.conflicts)} more overlaps"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {table.delegations} blocks from {len(table.sources)} file(s) as "
                f"{row.ipv4_ranges} IPv4 and {row.ipv6_ranges} IPv6 ranges in {row.countries} countries "
                f"({len(row.blob)} bytes, version {row.version})."
            )
        )
        if published is None:
            self.stderr.write(
                self.style.WARNING(
                    "Stored, but not published: Redis did not answer (see the log above). The periodic snapshot "
                    "republish, or manage.py publish_snapshot, publishes it."
                )
            )
