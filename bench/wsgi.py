"""The WSGI application gunicorn serves for `make bench` (LeadFlow itself ships ASGI, see leadflow/asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings.bench")

application = get_wsgi_application()
