"""Signals from the systems a team already runs (billing first): received, verified,
stored once, matched to accounts, and applied (docs/integrations.md)."""
