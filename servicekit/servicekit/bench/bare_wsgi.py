"""The limit: a WSGI callable with no framework at all (uWSGI loads it as servicekit.bench.bare_wsgi:application)."""

from collections.abc import Callable, Iterable

from servicekit.bench import BODY

HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]
