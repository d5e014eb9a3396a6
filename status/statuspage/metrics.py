"""The status page's figures in Prometheus's text format, written by prometheus_client from the collector's state
at each scrape. Served on a port of their own (METRICS_PORT) in the status container, which joins only the
metrics network, where Prometheus is: never through the gateway, so never on the public port. A scrape counts as
a look at the page: the collector polls the replicas while Prometheus scrapes.

Per service and replica (`service`, `replica`: the hostname over unix sockets, the address over TCP; `node` on
Swarm): what uWSGI's counters say (requests, seconds busy, workers busy and idle, the listen queue), what the
gateway logged (responses by status class, their duration as a histogram), and the replicas routed and draining;
then the gateway's own connections and requests (nginx's stub_status).
"""

import os

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector as MetricsSource
from prometheus_client.registry import CollectorRegistry

from statuspage.collector import DURATION_BUCKETS, Collector

METRICS_PORT = int(os.environ.get("METRICS_PORT", "9100"))
PREFIX = "microstack"


class StackMetrics(MetricsSource):
    """The metric families of one scrape, from the status page's collector."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self):
        self.collector.watch()
        self.collector.poll_now()
        state = self.collector.metrics_state()
        replica_labels = ["service", "replica", "node"]

        requests = CounterMetricFamily(
            f"{PREFIX}_uwsgi_requests",
            "Requests a replica's uWSGI workers served, less healthchecks.",
            labels=replica_labels,
        )
        busy_seconds = CounterMetricFamily(
            f"{PREFIX}_uwsgi_busy_seconds",
            "Seconds a replica's workers spent serving requests, added over its workers and their threads (per "
            "second, divided by workers x threads: how saturated it is).",
            labels=replica_labels,
        )
        workers = GaugeMetricFamily(
            f"{PREFIX}_uwsgi_workers",
            "A replica's uWSGI workers, busy or idle, at the last poll.",
            labels=[*replica_labels, "state"],
        )
        threads = GaugeMetricFamily(
            f"{PREFIX}_uwsgi_threads",
            "Threads in each of a replica's workers: each serves one request at a time.",
            labels=replica_labels,
        )
        listen_queue = GaugeMetricFamily(
            f"{PREFIX}_uwsgi_listen_queue",
            "Connections waiting in a replica's socket's backlog for a free worker, at the last poll.",
            labels=replica_labels,
        )
        listen_queue_errors = CounterMetricFamily(
            f"{PREFIX}_uwsgi_listen_queue_errors",
            "Connections a replica's full backlog refused.",
            labels=replica_labels,
        )
        for replica in state.replicas:
            labels, totals = [replica.service, replica.replica, replica.node], replica.totals
            requests.add_metric(labels, totals.requests)
            busy_seconds.add_metric(labels, totals.busy_seconds)
            workers.add_metric([*labels, "busy"], totals.busy)
            workers.add_metric([*labels, "idle"], totals.idle)
            threads.add_metric(labels, totals.threads)
            listen_queue.add_metric(labels, totals.listen_queue)
            listen_queue_errors.add_metric(labels, totals.listen_queue_errors)

        replicas = per_service(
            f"{PREFIX}_replicas",
            "A service's replicas the gateway routes to that answered the last poll.",
            state.routed,
        )
        draining = per_service(
            f"{PREFIX}_replicas_draining",
            "A service's replicas the gateway left out of its routes while they finish what they serve, then stop.",
            state.draining,
        )

        responses = CounterMetricFamily(
            f"{PREFIX}_gateway_responses",
            "Responses the gateway logged for a replica, by status class (2xx, 4xx, 5xx...).",
            labels=[*replica_labels, "code"],
        )
        durations = HistogramMetricFamily(
            f"{PREFIX}_gateway_response_duration_seconds",
            "How long the gateway took to answer a request a replica served, from its first byte to its last.",
            labels=replica_labels,
        )
        for replica_logged in state.logged:
            labels, logged = (
                [replica_logged.service, replica_logged.replica, replica_logged.node],
                replica_logged.logged,
            )
            for code, count in logged.classes().items():
                responses.add_metric([*labels, code], count)
            cumulative, buckets = 0, []
            for bound, count in zip([*DURATION_BUCKETS, float("inf")], logged.buckets, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            durations.add_metric(labels, buckets, logged.seconds_sum)

        gateway_connections = GaugeMetricFamily(
            f"{PREFIX}_gateway_connections", "The gateway's client connections open, by state.", labels=["state"]
        )
        gateway_requests = CounterMetricFamily(f"{PREFIX}_gateway_requests", "Requests the gateway received.")
        gateway = state.gateway
        if gateway:
            for connection_state in ("reading", "writing", "waiting"):
                gateway_connections.add_metric([connection_state], gateway[connection_state])
            gateway_requests.add_metric([], gateway["requests_total"])

        yield from (requests, busy_seconds, workers, threads, listen_queue, listen_queue_errors, replicas, draining)
        yield from (responses, durations, gateway_connections, gateway_requests)


def per_service(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    """A gauge labelled by service alone, one sample a service."""
    gauge = GaugeMetricFamily(name, documentation, labels=["service"])
    for service, count in sorted(counts.items()):
        gauge.add_metric([service], count)
    return gauge


def registry_of(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StackMetrics(collector))
    return registry


def serve(collector: Collector) -> None:
    """/metrics on METRICS_PORT, in a thread of this process (where the collector's state is)."""
    start_http_server(METRICS_PORT, registry=registry_of(collector))
