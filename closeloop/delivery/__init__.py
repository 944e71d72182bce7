"""The outbox: Delivery rows, channels, transports, sending with retries; it knows no client app."""
