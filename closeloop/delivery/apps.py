"""Django's registration of the delivery app."""

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "closeloop.delivery"
    label = "delivery"
    verbose_name = "Deliveries"
