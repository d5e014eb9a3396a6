"""The WSGI application of a service, loaded by uWSGI as servicekit.wsgi:application (DJANGO_SETTINGS_MODULE)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
