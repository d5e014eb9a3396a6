"""The limit: a WSGI callable with no framework at all (uWSGI loads it as bench_apps.bare_wsgi:application)."""

from collections.abc import Callable, Iterable

from bench_apps import BODY

HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
