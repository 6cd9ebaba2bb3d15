from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0015_cdr_end_reason_media_timeout"),
    ]

    operations = [
        # The CDR table is partitioned and made by hand (billing.partitions): the column is added to the parent,
        # which reaches every partition; a constant default keeps the ALTER a catalogue change.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="cdr",
                    name="decision_trace",
                    field=models.CharField(
                        blank=True,
                        help_text=(
                            "Why each candidate vendor was skipped and the limits that applied, as the call core "
                            "decided (the routing simulator's vocabulary)."
                        ),
                        max_length=1000,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE billing_cdr ADD COLUMN decision_trace varchar(1000) NOT NULL DEFAULT ''",
                    "ALTER TABLE billing_cdr DROP COLUMN decision_trace",
                ),
            ],
        ),
    ]
