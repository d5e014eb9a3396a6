"""Django with nothing of servicekit's: no middleware, no apps, no database, one view (uWSGI loads it as
bench_apps.bare_django:application). Its settings are its own, whatever DJANGO_SETTINGS_MODULE says.
"""

import os
import secrets

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import re_path

from bench_apps import BODY

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(","),
    # Nothing is signed: a key for this process only.
    SECRET_KEY=secrets.token_hex(32),
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_I18N=False,
)


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [re_path(r"^api/[^/]+/health/?$", health)]
application = get_wsgi_application()
