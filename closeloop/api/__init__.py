"""The HTTP APIs: closeloop's v1 (django-ninja) and the Delighted-compatible /v1/; routes only."""
