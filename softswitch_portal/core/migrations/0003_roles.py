"""The operators' roles (softswitch_portal.core.roles): NOC, billing clerk, switching engineer, security reviewer,
administrator, and the trust permissions only administrators hold."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from softswitch_portal.core import roles

    roles.sync_roles(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0002_login_event"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
