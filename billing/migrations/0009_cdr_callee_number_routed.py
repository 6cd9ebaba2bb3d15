from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_cdr_end_reason_switch_restart"),
    ]

    operations = [
        # The CDR table is partitioned and made by hand (billing.partitions), so the column is too: added to
        # the parent it reaches every partition, and a constant default keeps the ALTER a catalogue change.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="cdr",
                    name="callee_number_routed",
                    field=models.CharField(
                        blank=True,
                        help_text="Callee after the mapping gateway's transforms: routed on, and rated unless the sent one is.",
                        max_length=64,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE billing_cdr ADD COLUMN callee_number_routed varchar(64) NOT NULL DEFAULT ''",
                    "ALTER TABLE billing_cdr DROP COLUMN callee_number_routed",
                ),
            ],
        ),
    ]
