"""Give the operators' roles the permissions their declaration names, new models' included."""

from django.core.management.base import BaseCommand

from softswitch_portal.core import roles


class Command(BaseCommand):
    help = "Create or update the roles' groups (NOC, billing clerk, ...) from softswitch_portal.core.roles."

    def handle(self, *args, **options):
        roles.sync_roles()
        self.stdout.write(self.style.SUCCESS(f"Roles up to date: {', '.join(roles.ROLES)}"))
