"""The live calls' permissions (watch, disconnect), granted to the roles that list them (core.roles)."""

from django.db import migrations, models


def grant_roles(apps, schema_editor):
    from softswitch_portal.core import roles

    roles.sync_roles(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("core", "0003_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="LiveCall",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
            options={
                "verbose_name": "current call",
                "verbose_name_plural": "current calls",
                "permissions": [("disconnect_livecall", "Can end a live call (forced disconnect)")],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
        migrations.RunPython(grant_roles, migrations.RunPython.noop),
    ]
