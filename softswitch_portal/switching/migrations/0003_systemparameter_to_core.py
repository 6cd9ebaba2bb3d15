"""SystemParameter now belongs to the core app (core 0001): forgotten here, its table kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("switching", "0002_route_policy_help"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SystemParameter")],
            database_operations=[],
        ),
    ]
