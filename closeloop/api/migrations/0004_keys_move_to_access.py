"""API keys and idempotency records move to the access app; their tables stay as they
are, so only Django's state changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0001_initial'),
        ('api', '0003_admin_scope'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='idempotencyrecord',
                    name='api_key',
                ),
                migrations.DeleteModel(
                    name='ApiKey',
                ),
                migrations.DeleteModel(
                    name='IdempotencyRecord',
                ),
            ],
            database_operations=[],
        ),
    ]
