"""The WSGI application of a service, loaded by uWSGI as servicekit.wsgi:application (DJANGO_SETTINGS_MODULE)."""

from django.core.wsgi import get_wsgi_application

from servicekit.server import publish_threads

application = get_wsgi_application()
publish_threads()
