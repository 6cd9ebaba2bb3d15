from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_cdr_callee_number_routed"),
    ]

    operations = [
        # The CDR table is partitioned and made by hand (billing.partitions), so the column is too: added to
        # the parent it reaches every partition, and a constant default keeps the ALTER a catalogue change.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="cdr",
                    name="estimated",
                    field=models.BooleanField(
                        default=False,
                        help_text="The call core died mid-call: the end is its last heartbeat, charged up to then.",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE billing_cdr ADD COLUMN estimated boolean NOT NULL DEFAULT false",
                    "ALTER TABLE billing_cdr DROP COLUMN estimated",
                ),
            ],
        ),
    ]
