from django.apps import AppConfig


class CloseloopConfig(AppConfig):
    name = "closeloop"
    verbose_name = "closeloop"
