"""The theme engine's models, moved from insights: their tables exist already (created by
insights' migrations, names kept by db_table), so this only tells Django the models are
themes' now."""

import django.db.models.deletion
import django.db.models.functions.text
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('insights', '0008_theme_name_unique_ignoring_case'),
        ('surveys', '0011_csv_imports_in_the_worker'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Theme',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('slug', models.SlugField(max_length=60, unique=True)),
                        ('name', models.CharField(max_length=100)),
                        ('description', models.TextField(blank=True)),
                        ('probes', models.JSONField(blank=True, default=list, help_text="the conversation guide's")),
                        ('retired_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('merged_into', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='merged_from', to='themes.theme')),
                        ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('split_from', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='split_into', to='themes.theme')),
                    ],
                    options={
                        'db_table': 'insights_theme',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='ThemeDiscovery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('since', models.DateField()),
                        ('until', models.DateField()),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=8)),
                        ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('comments', models.PositiveIntegerField(default=0, help_text='unclassified comments read')),
                        ('error', models.CharField(blank=True, max_length=300)),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'insights_themediscovery',
                        'ordering': ['-requested_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ThemeCandidate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(help_text='suggested from its words', max_length=100)),
                        ('keywords', models.JSONField(default=list)),
                        ('size', models.PositiveIntegerField()),
                        ('share', models.FloatField(help_text='of the unclassified comments read')),
                        ('examples', models.JSONField(default=list, help_text="the most typical comments' texts")),
                        ('response_ids', models.JSONField(default=list, help_text='every member answer, typical first')),
                        ('status', models.CharField(choices=[('open', 'Open'), ('accepted', 'Accepted'), ('dismissed', 'Dismissed')], default='open', max_length=10)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('theme', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='themes.theme')),
                        ('discovery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='candidates', to='themes.themediscovery')),
                    ],
                    options={
                        'db_table': 'insights_themecandidate',
                        'ordering': ['-size', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='ThemeExample',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('text', models.TextField()),
                        ('themes', models.JSONField(blank=True, default=list, help_text='theme slugs')),
                        ('source', models.CharField(choices=[('correction', 'Correction'), ('discovery', 'Discovery')], max_length=12)),
                        ('via', models.CharField(blank=True, help_text="page, or the API key's name", max_length=120)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('response', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='surveys.response')),
                    ],
                    options={
                        'db_table': 'insights_themeexample',
                    },
                ),
                migrations.CreateModel(
                    name='ThemeTag',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('confidence', models.FloatField(blank=True, help_text="the model's; none by hand", null=True)),
                        ('source', models.CharField(choices=[('model', 'Model'), ('person', 'Person')], max_length=8)),
                        ('model_version', models.CharField(blank=True, max_length=80)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('response', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='theme_tags', to='surveys.response')),
                        ('theme', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='tags', to='themes.theme')),
                    ],
                    options={
                        'db_table': 'insights_themetag',
                    },
                ),
                migrations.CreateModel(
                    name='ThemeTraining',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('on_demand', 'On demand'), ('nightly', 'Nightly')], max_length=10)),
                        ('day', models.DateField(blank=True, help_text="the night's date, for nightly runs", null=True)),
                        ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('unchanged', 'Unchanged'), ('failed', 'Failed')], default='queued', max_length=10)),
                        ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('started_at', models.DateTimeField(blank=True, null=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('version', models.CharField(blank=True, max_length=80)),
                        ('examples', models.PositiveIntegerField(default=0, help_text='how many it learned from')),
                        ('corrections', models.PositiveIntegerField(default=0, help_text="of which people's")),
                        ('error', models.CharField(blank=True, max_length=300)),
                        ('model', models.BinaryField(blank=True, null=True)),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'insights_themetraining',
                        'ordering': ['-requested_at', '-id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='theme',
                    constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('name'), name='theme_name_unique_ignoring_case'),
                ),
                migrations.AddConstraint(
                    model_name='themeexample',
                    constraint=models.UniqueConstraint(condition=models.Q(('response__isnull', False)), fields=('response',), name='theme_example_per_response'),
                ),
                migrations.AddIndex(
                    model_name='themetag',
                    index=models.Index(fields=['theme', 'response'], name='theme_tag_theme'),
                ),
                migrations.AddConstraint(
                    model_name='themetag',
                    constraint=models.UniqueConstraint(fields=('response', 'theme'), name='theme_tag_once'),
                ),
                migrations.AddIndex(
                    model_name='themetraining',
                    index=models.Index(fields=['status', 'finished_at'], name='theme_training_status'),
                ),
                migrations.AddConstraint(
                    model_name='themetraining',
                    constraint=models.UniqueConstraint(condition=models.Q(('kind', 'nightly')), fields=('day',), name='theme_training_nightly_once'),
                ),
            ],
            database_operations=[],
        ),
    ]
