"""make bench's limits answer the minimal endpoint's shape: a bare WSGI callable, and Django with nothing else."""

import json
import subprocess
import sys
from wsgiref.util import setup_testing_defaults

from bench_apps import bare_wsgi

CALL_BARE_DJANGO = """
import json, sys
from wsgiref.util import setup_testing_defaults
from django.conf import settings
from bench_apps.bare_django import application
answers = {}
for path in sys.argv[1:]:
    environ = {"PATH_INFO": path, "HTTP_HOST": "localhost"}
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(application(environ, lambda status, headers: statuses.append(status)))
    answers[path] = [statuses[0], body.decode()]
print(json.dumps({"answers": answers, "middleware": settings.MIDDLEWARE, "apps": settings.INSTALLED_APPS}))
"""


def call(application, path: str) -> tuple[str, dict, bytes]:
    environ = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers):
        answer.update(status=status, headers=dict(headers))

    body = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], body


def test_the_bare_wsgi_callable_answers_the_health_shape_with_its_length():
    status, headers, body = call(bare_wsgi.application, "/api/bare-wsgi/health/")
    assert status == "200 OK"
    assert json.loads(body) == {"status": "ok"}
    assert headers == {"Content-Type": "application/json", "Content-Length": str(len(body))}


def test_bare_django_has_no_middleware_and_no_apps_and_serves_only_health():
    # A process of its own: it configures Django's settings, which this test process has already done.
    # Its health with and without the slash, as every service answers it (the image's healthcheck asks without).
    paths = ["/api/bare-django/health/", "/api/bare-django/health", "/api/bare-django/products"]
    result = subprocess.run(
        [sys.executable, "-c", CALL_BARE_DJANGO, *paths], capture_output=True, text=True, check=True, timeout=60
    )
    facts = json.loads(result.stdout)
    assert facts["middleware"] == [] and facts["apps"] == []
    assert facts["answers"][paths[0]] == facts["answers"][paths[1]] == ["200 OK", '{"status": "ok"}']
    assert facts["answers"][paths[2]][0].startswith("404")
