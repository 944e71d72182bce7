"""An announcement's theme is now themes.Theme (the same table, moved with the theme
engine); the database keeps its foreign key as it is."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loop', '0007_bounce_reports'),
        ('themes', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='announcement',
                    name='theme',
                    field=models.ForeignKey(blank=True, help_text='the theme it answers', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='announcements', to='themes.theme'),
                ),
            ],
            database_operations=[],
        ),
    ]
