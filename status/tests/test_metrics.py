"""/metrics: the collector's figures in Prometheus's text format, as a scrape reads them."""

import json

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_statuspage import STUB_STATUS, answer_from

from servicekit.healthcheck import HEALTHCHECKS_METRIC
from servicekit.server import THREADS_METRIC
from statuspage.collector import Collector, Served
from statuspage.metrics import registry_of

UPSTREAMS = 'upstream "service1" {\n    server "unix:/run/uwsgi/service1/aaaa11112222.sock" max_fails=0;\n}\n'


def stats(requests: int, healthchecks: int, running_µs: int) -> bytes:
    """A replica's uWSGI stats: two workers, one busy; its backlog and the healthchecks among its requests."""
    workers = [
        {"id": 1, "status": "busy", "requests": requests - 1, "running_time": running_µs - 1000},
        {"id": 2, "status": "idle", "requests": 1, "running_time": 1000},
    ]
    metrics = {HEALTHCHECKS_METRIC: {"value": healthchecks}, THREADS_METRIC: {"value": 2}}
    return json.dumps({"listen_queue": 3, "listen_queue_errors": 2, "workers": workers, "metrics": metrics}).encode()


# A gateway with one replica of service1, as the status plane answers it.
ONE_REPLICA = {
    "/_gateway/upstreams": UPSTREAMS.encode(),
    "/_gateway/stats/service1/aaaa11112222": stats(requests=107, healthchecks=7, running_µs=2_500_000),
    "/_gateway/names/service1/aaaa11112222": b"microstack-service1-1\n",
    "/_gateway/stub_status": STUB_STATUS.encode(),
    "/_gateway/refused": b"",
    "/_gateway/draining": b"",
}


@pytest.fixture
def scrape(monkeypatch):
    """A collector answered by a gateway with one replica of service1, and a function that scrapes it: the
    samples of the scrape, by (name, sorted labels)."""
    collector = Collector()
    answer_from(collector, dict(ONE_REPLICA), monkeypatch)
    return collector, lambda: samples_of(collector)


def samples_of(collector: Collector) -> dict:
    """The samples of a scrape, by (name, sorted labels)."""
    text = generate_latest(registry_of(collector)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


REPLICA = (("node", ""), ("replica", "aaaa11112222"), ("service", "service1"))


def test_a_scrape_polls_the_replicas_and_shows_their_uwsgi_counters(scrape):
    collector, scraped = scrape
    samples = scraped()  # the first look polls at once, as the page's does
    assert samples[("microstack_uwsgi_requests_total", REPLICA)] == 100  # 107 less 7 healthchecks
    assert samples[("microstack_uwsgi_busy_seconds_total", REPLICA)] == 2.5  # running_time, in µs
    assert samples[("microstack_uwsgi_workers", (*REPLICA, ("state", "busy")))] == 1
    assert samples[("microstack_uwsgi_workers", (*REPLICA, ("state", "idle")))] == 1
    assert samples[("microstack_uwsgi_threads", REPLICA)] == 2
    assert samples[("microstack_uwsgi_listen_queue", REPLICA)] == 3
    assert samples[("microstack_uwsgi_listen_queue_errors_total", REPLICA)] == 2
    assert samples[("microstack_replicas", (("service", "service1"),))] == 1
    assert samples[("microstack_replicas_draining", (("service", "service1"),))] == 0
    assert samples[("microstack_gateway_requests_total", ())] == 345
    assert samples[("microstack_gateway_connections", (("state", "waiting"),))] == 6
    assert collector.watched.is_set()  # and the collector keeps polling while Prometheus scrapes


def test_responses_are_counted_by_status_class_and_their_durations_into_cumulative_buckets(scrape):
    collector, scraped = scrape
    scraped()
    for status, seconds in [(200, 0.0008), (201, 0.004), (404, 0.004), (503, 0.2), (200, 45.0)]:
        collector.add(Served(1000.0, "service1", "aaaa11112222", status, seconds))
    collector.add(Served(1000.0, "", "", 404, 0.0))  # the gateway's own answer: no replica's
    samples = scraped()
    responses = {
        dict(labels)["code"]: value
        for (name, labels), value in samples.items()
        if name == "microstack_gateway_responses_total"
    }
    assert responses == {"2xx": 3, "4xx": 1, "5xx": 1}

    def bucket(bound: str) -> float:
        return samples[
            ("microstack_gateway_response_duration_seconds_bucket", tuple(sorted({*REPLICA, ("le", bound)})))
        ]

    assert [bucket("0.001"), bucket("0.005"), bucket("0.25"), bucket("30.0"), bucket("+Inf")] == [1, 3, 4, 4, 5]
    assert samples[("microstack_gateway_response_duration_seconds_count", REPLICA)] == 5
    assert samples[("microstack_gateway_response_duration_seconds_sum", REPLICA)] == pytest.approx(45.2088)


def test_a_replica_gone_from_the_upstreams_is_gone_from_the_next_scrape(scrape, monkeypatch):
    collector, scraped = scrape
    collector.add(Served(1000.0, "service1", "aaaa11112222", 200, 0.001))
    assert ("microstack_uwsgi_requests_total", REPLICA) in scraped()
    answer_from(collector, {**ANSWERS_WITHOUT_REPLICAS}, monkeypatch)
    collector.poll()
    names = {name for name, _ in scraped()}
    assert "microstack_uwsgi_requests_total" not in names and "microstack_gateway_responses_total" not in names


ANSWERS_WITHOUT_REPLICAS = {
    "/_gateway/upstreams": b'upstream "service1" {\n    server "unix:/run/uwsgi/service1/none.sock" down;\n}\n',
    "/_gateway/stub_status": STUB_STATUS.encode(),
    "/_gateway/refused": b"",
    "/_gateway/draining": b"",
}


def test_replicas_the_gateway_left_out_while_they_drain_are_counted_apart_from_those_it_routes_to(monkeypatch):
    """The gateway lists them (nginx/entrypoint.sh, /_gateway/draining); a name no container can have, written in
    a service's volume, is not one."""
    collector = Collector()
    draining = "service1\tbbbb33334444\nservice1\t../../etc/passwd\nservice1\t<b>x</b>\nservice1\n"
    answer_from(collector, {**ONE_REPLICA, "/_gateway/draining": draining.encode()}, monkeypatch)
    collector.poll()
    samples = samples_of(collector)
    assert samples[("microstack_replicas", (("service", "service1"),))] == 1
    assert samples[("microstack_replicas_draining", (("service", "service1"),))] == 1
    (service1,) = collector.snapshot()["services"]
    assert service1["draining"] == ["bbbb33334444"]
