"""The status page's WSGI application, served by uWSGI in the status container and routed by the gateway at
/status/: the page (a table rendered here, so it reads without JavaScript; status.js refreshes it every second),
its data as JSON at /status/data.json, and the page's script and style. Nothing is loaded from elsewhere. The same
figures in Prometheus's format are on a port of their own (metrics.py), never at the gateway."""

import html
import json
import os
from collections.abc import Callable, Iterable
from importlib import resources

from statuspage import metrics
from statuspage.collector import Collector

ENABLED = os.environ.get("STATUS_PAGE", "true").lower() not in ("false", "0", "no", "off")
collector = Collector()
try:
    import uwsgi  # noqa: F401  (the server's own module: there only)
except ImportError:
    pass  # imported, not served (the unit tests): nothing to collect
else:
    if ENABLED:  # in the server's worker (--lazy-apps), where the page is served from
        collector.start()
        metrics.serve(collector)  # for Prometheus, on the metrics network only (not through the gateway)

ASSETS = {
    "/status/status.js": "application/javascript; charset=utf-8",
    "/status/status.css": "text/css; charset=utf-8",
}

StartResponse = Callable[[str, list[tuple[str, str]]], object]


# The figures of each row, in the table's order (page.html's columns, status.js's too).
FIGURES = ("requests_per_second", "p50_ms", "p99_ms", "errors", "unsampled")


def replica_label(replica: dict) -> str:
    """The name `docker compose ps` (or `docker service ps`) shows, with the hostname (the container's id), and on
    Swarm the node it runs on."""
    label = f"{replica['name']} ({replica['instance']})" if replica.get("name") else replica["instance"]
    return f"{label} on {replica['node']}" if replica.get("node") else label


def cell(value: object) -> str:
    return "<td>–</td>" if value is None else f"<td>{html.escape(str(value))}</td>"


def rows_of(snapshot: dict) -> str:
    """The table's rows: a line per service with its totals, then one per replica, then one per file of its
    volume the gateway refused to route to."""
    rows = []
    for service in snapshot["services"]:
        figures = [service[key] for key in FIGURES]
        replicas = f"{len(service['replicas'])} replica(s)"
        rows.append(
            f'<tr class="service"><th scope="row">{html.escape(service["name"])}</th><td>{replicas}</td><td></td>'
            + "".join(cell(value) for value in figures)
            + "</tr>"
        )
        for replica in service["replicas"]:
            workers = f"{replica['busy']} busy / {replica['idle']} idle"
            figures = [replica[key] for key in FIGURES]
            rows.append(
                f'<tr class="replica" data-service="{html.escape(service["name"])}"><td></td>'
                + cell(replica_label(replica))
                + cell(workers)
                + "".join(cell(value) for value in figures)
                + "</tr>"
            )
        for refused in service["refused"]:
            rows.append(
                f'<tr class="refused" data-service="{html.escape(service["name"])}"><td></td>'
                + cell(f"refused: {refused['name']}")
                + cell(refused["why"])
                + "</tr>"
            )
    return "\n".join(rows)


def gateway_line(snapshot: dict) -> str:
    gateway = snapshot["gateway"]
    return html.escape(
        f"gateway: {gateway.get('active_connections', '–')} connections open, "
        f"{gateway['requests_per_second']} requests/s, p50 {gateway['p50_ms'] or '–'} ms, "
        f"p99 {gateway['p99_ms'] or '–'} ms, {gateway['errors']} errors in the last {snapshot['window_seconds']} s"
    )


def autoscale_line(decision: dict) -> str:
    """One decision of `make autoscale`, as the page lists it (status.js writes the same)."""
    return f"{decision['at']} {decision['service']}: {decision['replicas']} replica(s): {decision['why']}"


def autoscale_items(snapshot: dict) -> str:
    return "\n".join(f"<li>{html.escape(autoscale_line(decision))}</li>" for decision in snapshot["autoscale"])


def page(snapshot: dict) -> str:
    template = resources.files(__package__).joinpath("page.html").read_text()
    return (
        template.replace("{{rows}}", rows_of(snapshot))
        .replace("{{gateway}}", gateway_line(snapshot))
        .replace("{{autoscale}}", autoscale_items(snapshot))
        .replace("{{time}}", html.escape(snapshot["time"]))
    )


def application(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if not ENABLED:
        status, content_type, body = "404 Not Found", "application/json", off_body()
    elif environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        status, content_type, body = "405 Method Not Allowed", "application/json", error_body("method_not_allowed")
    elif path in ("/status", "/status/"):
        collector.watch()
        status, content_type, body = "200 OK", "text/html; charset=utf-8", page(collector.snapshot()).encode()
    elif path == "/status/data.json":
        collector.watch()
        status, content_type, body = "200 OK", "application/json", json.dumps(collector.snapshot()).encode() + b"\n"
    elif path in ASSETS:
        asset = resources.files(__package__).joinpath(path.rsplit("/", 1)[1]).read_bytes()
        status, content_type, body = "200 OK", ASSETS[path], asset
    else:
        status, content_type, body = "404 Not Found", "application/json", error_body("not_found")
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")]
    start_response(status, headers)
    return [body]


def error_body(code: str) -> bytes:
    message = {"not_found": "No route for this path", "method_not_allowed": "Method not allowed"}[code]
    return json.dumps({"error": {"code": code, "message": message, "details": None}}).encode() + b"\n"


def off_body() -> bytes:
    message = "The status page is off (STATUS_PAGE=false)"
    return json.dumps({"error": {"code": "not_found", "message": message, "details": None}}).encode() + b"\n"
