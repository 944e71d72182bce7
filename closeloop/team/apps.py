"""Django's registration of the team app."""

from django.apps import AppConfig


class TeamConfig(AppConfig):
    name = "closeloop.team"
    label = "team"
    verbose_name = "Team"
