"""WSGI entry point: `gunicorn closeloop.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeloop.settings")
application = get_wsgi_application()
