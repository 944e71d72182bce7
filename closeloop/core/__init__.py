"""The lowest layer: NPS arithmetic, calendar periods, database helpers, the claim
helper, the one input error, and what a row read by the worker carries. Imports no app."""
