"""Django's registration of the project itself (its management commands)."""

from django.apps import AppConfig


class CloseloopConfig(AppConfig):
    name = "closeloop"
    verbose_name = "closeloop"

    def ready(self) -> None:
        # Registers the `field__any=` lookup every app may use (closeloop.core.db.AnyOf).
        from closeloop.core import db  # noqa: F401
