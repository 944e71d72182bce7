"""Django's registration of the project itself (its management commands)."""

from django.apps import AppConfig


class CloseloopConfig(AppConfig):
    name = "closeloop"
    verbose_name = "closeloop"
