"""Phones keep HA1 and HA1b instead of their passwords: each existing password is hashed, then dropped."""

import hashlib

from django.conf import settings
from django.db import migrations, models

from callcore.contract import SIP_REALM


def hash_passwords(apps, schema_editor):
    Phone = apps.get_model("switching", "Phone")
    realm = getattr(settings, "SIP_REALM", SIP_REALM)
    for phone in Phone.objects.only("id", "username", "password").iterator():
        phone.ha1 = hashlib.md5(f"{phone.username}:{realm}:{phone.password}".encode()).hexdigest()
        phone.ha1b = hashlib.md5(f"{phone.username}@{realm}:{realm}:{phone.password}".encode()).hexdigest()
        phone.digest_realm = realm
        phone.save(update_fields=["ha1", "ha1b", "digest_realm"])


class Migration(migrations.Migration):
    dependencies = [
        ("switching", "0004_mappinggateway_require_caller_number"),
    ]

    operations = [
        migrations.AddField(
            model_name="phone",
            name="ha1",
            field=models.CharField(
                blank=True, editable=False, help_text="MD5(username:realm:password).", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="phone",
            name="ha1b",
            field=models.CharField(
                blank=True, editable=False, help_text="MD5(username@realm:realm:password).", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="phone",
            name="digest_realm",
            field=models.CharField(
                blank=True, editable=False, help_text="The realm the hashes were made in.", max_length=128
            ),
        ),
        # Backwards the passwords come back empty: they cannot be recovered from their hashes.
        migrations.RunPython(hash_passwords, migrations.RunPython.noop, elidable=False),
        migrations.RemoveField(model_name="phone", name="password"),
    ]
