"""Management commands and the demo data they load."""
