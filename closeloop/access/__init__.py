"""API access: API keys and the replay store of writes sent with an Idempotency-Key."""
