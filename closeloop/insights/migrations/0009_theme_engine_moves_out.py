"""The theme engine's models move to the themes app (closeloop/themes). Their tables stay
as they are (`insights_*`, kept by each model's db_table): only Django's idea of which
app owns them changes, so no data moves."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('insights', '0008_theme_name_unique_ignoring_case'),
        ('themes', '0001_initial'),
        ('loop', '0008_announcement_theme_in_themes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='theme',
                    name='merged_into',
                ),
                migrations.RemoveField(
                    model_name='theme',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='theme',
                    name='split_from',
                ),
                migrations.RemoveField(
                    model_name='themecandidate',
                    name='theme',
                ),
                migrations.RemoveField(
                    model_name='themetag',
                    name='theme',
                ),
                migrations.RemoveField(
                    model_name='themecandidate',
                    name='decided_by',
                ),
                migrations.RemoveField(
                    model_name='themecandidate',
                    name='discovery',
                ),
                migrations.RemoveField(
                    model_name='themediscovery',
                    name='requested_by',
                ),
                migrations.RemoveField(
                    model_name='themeexample',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='themeexample',
                    name='response',
                ),
                migrations.RemoveField(
                    model_name='themetag',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='themetag',
                    name='response',
                ),
                migrations.RemoveField(
                    model_name='themetraining',
                    name='requested_by',
                ),
                migrations.DeleteModel(
                    name='Theme',
                ),
                migrations.DeleteModel(
                    name='ThemeCandidate',
                ),
                migrations.DeleteModel(
                    name='ThemeDiscovery',
                ),
                migrations.DeleteModel(
                    name='ThemeExample',
                ),
                migrations.DeleteModel(
                    name='ThemeTag',
                ),
                migrations.DeleteModel(
                    name='ThemeTraining',
                ),
            ],
            database_operations=[],
        ),
    ]
