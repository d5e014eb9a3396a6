"""The stack's figures in Prometheus's format (the status page's /metrics) and the Prometheus of the metrics profile,
which the shared stack runs (conftest.py): a live scrape passes promtool, names every replica, is reachable by
Prometheus only, and what Prometheus computes from it matches what a client sent."""

import json
import subprocess
import time
from urllib.parse import SplitResult, urlsplit

import requests

from project import CATALOG, PROMETHEUS, SERVICES, STATUS, retrying_session
from stack import seconds, wait_until

SERVED = f'sum(microstack_uwsgi_requests_total{{service="{CATALOG}"}})'
PUBLIC_READ = f"/api/{CATALOG}/products"


def active_targets(stack) -> list[dict]:
    """What the stack's Prometheus scrapes (prometheus/prometheus.yml), as Prometheus says."""
    answer = requests.get(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/targets", timeout=10)
    return answer.json()["data"]["activeTargets"]


def scrape_target(stack) -> SplitResult:
    (target,) = active_targets(stack)
    return urlsplit(target["scrapeUrl"])


def scrape(stack) -> str:
    """/metrics as Prometheus reads it, from inside the status container (the port is on no other network)."""
    target = scrape_target(stack)
    url = target._replace(netloc=f"127.0.0.1:{target.port}").geturl()
    read = f"import urllib.request; print(urllib.request.urlopen({url!r}).read().decode())"
    result = stack.container(STATUS).exec_run(["python", "-c", read])
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode()


def scraped_after(stack, moment: float) -> float:
    """The catalog's request counter in the first scrape Prometheus took after moment."""
    found: list[float] = []

    def scraped() -> bool:
        result = stack.prometheus_query(
            f'max(timestamp(microstack_uwsgi_requests_total{{service="{CATALOG}"}})) > {moment:.3f}'
        )
        if result:
            found.append(float(stack.prometheus_query(SERVED, at=float(result[0]["value"][1]))[0]["value"][1]))
        return bool(found)

    assert wait_until(scraped, timeout=20), f"no scrape after {moment}"
    return found[0]


def test_a_live_scrape_passes_promtool_and_shows_every_replica_of_every_service(stack):
    text = scrape(stack)
    checked = subprocess.run(
        ["docker", "exec", "-i", stack.container(PROMETHEUS).id, "promtool", "check", "metrics"],
        input=text, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    for service in SERVICES:
        for container in stack.containers(service):
            labels = f'replica="{container.attrs["Config"]["Hostname"]}",service="{service}"'
            assert f'microstack_uwsgi_requests_total{{node="",{labels}}}' in text, (service, text[:2000])


def test_the_figures_are_on_the_metrics_network_only_not_at_the_gateway_nor_for_a_service(stack):
    for path in ("/status/metrics", "/metrics"):
        assert stack.get(path).status_code == 404, path
    target = scrape_target(stack)
    reach = f"import socket; socket.create_connection(({target.hostname!r}, {target.port}), timeout=2)"
    for service in SERVICES:
        tried = stack.container(service).exec_run(["python", "-c", reach])
        assert tried.exit_code != 0, (service, tried.output.decode())
    targets = active_targets(stack)
    assert [target["health"] for target in targets] == ["up"], json.dumps(targets)


def test_prometheus_counts_every_request_a_client_sent(stack):
    """Its counters are uWSGI's, less the healthchecks: nothing sampled away, nothing added."""
    before = scraped_after(stack, time.time())
    sent = 200
    for _ in range(sent):
        assert stack.get(PUBLIC_READ).status_code == 200
    after = scraped_after(stack, time.time())
    assert after - before == sent


def test_prometheus_rate_for_a_service_is_the_rate_a_client_sent_within_3_percent(stack):
    """A client sending at a steady pace for 20 s; Prometheus's rate over the last 15 s of it (three scrapes), and its
    saturation rule."""
    pace, duration, window = 40, seconds(20), 15
    session = retrying_session()  # the gateway reloads when a replica comes or goes: keep-alive is retried once
    answered: list[float] = []
    started = time.monotonic()
    for number in range(int(pace * duration)):
        time.sleep(max(0.0, started + number / pace - time.monotonic()))
        assert session.get(stack.base_url + PUBLIC_READ, timeout=5).status_code == 200
        answered.append(time.time())
    ended = answered[-1]
    scraped_after(stack, ended)  # the scrape that ends the window is in
    at = ended - 0.5
    (measured,) = stack.prometheus_query(
        f'sum(rate(microstack_uwsgi_requests_total{{service="{CATALOG}"}}[{window}s]))', at=at
    )
    sent_rate = sum(1 for moment in answered if at - window < moment <= at) / window
    assert abs(float(measured["value"][1]) - sent_rate) <= 0.03 * sent_rate, (measured, sent_rate)
    # The README's question, "which service needs more?": the one under load comes first.
    busiest = stack.prometheus_query("sort_desc(service:microstack_uwsgi_saturation:ratio30s)", at=at)
    assert [entry["metric"]["service"] for entry in busiest][:1] == [CATALOG], busiest
    assert sorted(entry["metric"]["service"] for entry in busiest) == SERVICES
