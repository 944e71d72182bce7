"""API keys and idempotency records, moved from the api app: their tables exist already
(names kept by db_table), so this only tells Django the models are access' now."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('api', '0003_admin_scope'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('prefix', models.CharField(help_text='Shown to tell keys apart.', max_length=16, unique=True)),
                        ('hashed_key', models.CharField(db_index=True, max_length=64)),
                        ('scope', models.CharField(choices=[('read', 'Read only'), ('read_write', 'Read and write'), ('admin', 'Admin: read, write and settings')], default='read_write', max_length=16)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'api_apikey',
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=255)),
                        ('path', models.CharField(max_length=255)),
                        ('request_hash', models.CharField(max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField()),
                        ('body', models.JSONField()),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='access.apikey')),
                    ],
                    options={
                        'db_table': 'api_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('api_key', 'key'), name='idempotency_key_per_api_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
