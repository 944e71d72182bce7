"""Django's registration of the loop app."""

from django.apps import AppConfig


class LoopConfig(AppConfig):
    name = "closeloop.loop"
    label = "loop"
    verbose_name = "Follow-up"
