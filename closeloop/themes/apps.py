"""Django's registration of the themes app."""

from django.apps import AppConfig


class ThemesConfig(AppConfig):
    name = "closeloop.themes"
    label = "themes"
    verbose_name = "Themes and sentiment"
