from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0013_cdr_end_reason_fraud_high_risk_exempt"),
    ]

    operations = [
        # The CDR table is partitioned and made by hand (billing.partitions): the column is added to the parent,
        # which reaches every partition; a constant default keeps the ALTER a catalogue change.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="cdr",
                    name="disconnected_by",
                    field=models.CharField(
                        blank=True,
                        help_text=(
                            "Who asked the switch to end the call: an operator (portal:, api:, vos:) or an "
                            "anti-fraud rule."
                        ),
                        max_length=150,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE billing_cdr ADD COLUMN disconnected_by varchar(150) NOT NULL DEFAULT ''",
                    "ALTER TABLE billing_cdr DROP COLUMN disconnected_by",
                ),
            ],
        ),
    ]
