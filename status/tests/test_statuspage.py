"""The status page's figures from what the servers keep: nginx's log lines, upstreams and counters, uWSGI stats."""

import json
import threading
import time
import tracemalloc

import pytest

from statuspage import app
from statuspage.collector import (
    AUTOSCALE_BYTES,
    POLL_SECONDS,
    STATS_BYTES,
    Collector,
    Counted,
    Requests,
    Served,
    autoscale_decisions,
    counted_of,
    counter_figures,
    figures,
    latency_figures,
    parse_log_line,
    parse_stub_status,
    parse_upstreams,
    polled_span,
    workers_of,
)

UPSTREAMS = """map $route_service $route_service_known {
    default 0;
    "service1" 1;
    "service2" 1;
}
upstream "service1" {
    server "unix:/run/uwsgi/service1/aaaa11112222.sock" max_fails=0;
    server "unix:/run/uwsgi/service1/bbbb33334444.sock" max_fails=0;
}
upstream "service2" {
    server "unix:/run/uwsgi/service2/no-replica.sock" down;
}
"""

STUB_STATUS = """Active connections: 7
server accepts handled requests
 120 120 345
Reading: 0 Writing: 1 Waiting: 6
"""


def test_a_log_line_names_the_replica_that_answered_last():
    datagram = (
        b"<190>Nov 28 21:00:00 gateway: 1700000000.250|service1|"
        b"unix:/run/uwsgi/service1/aaaa11112222.sock, unix:/run/uwsgi/service1/bbbb33334444.sock|200|0.012"
    )
    assert parse_log_line(datagram) == Served(1700000000.25, "service1", "bbbb33334444", 200, 0.012)


@pytest.mark.parametrize(
    "datagram", [b"", b"no header at all", b"<190>Nov 28 21:00:00 gateway: 1|2|3", b"<190>x: a|s|-|200|0.1"]
)
def test_a_line_that_is_not_the_format_is_skipped(datagram):
    assert parse_log_line(datagram) is None


def test_a_request_the_gateway_answered_itself_has_no_replica():
    served = parse_log_line(b"<190>Nov 28 21:00:00 gateway: 1.0||-|404|0.000")
    assert served is not None and served.instance == ""


def test_figures_over_the_window():
    served = [Served(0, "s", "r", 200, seconds / 1000) for seconds in range(1, 101)]
    served.append(Served(0, "s", "r", 503, 0.001))
    result = figures(Requests.of(served), 10)
    assert result["requests_per_second"] == 10.1
    assert result["errors"] == 1
    assert 49 <= result["p50_ms"] <= 51 and 98 <= result["p99_ms"] <= 100


def test_no_requests_is_a_zero_rate_and_no_latency():
    assert figures(Requests(), 10) == {"requests_per_second": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0}


def test_the_replicas_are_the_upstreams_servers_but_the_placeholder():
    assert parse_upstreams(UPSTREAMS) == {"service1": ["aaaa11112222", "bbbb33334444"], "service2": []}


def test_the_gateway_counters_from_stub_status():
    assert parse_stub_status(STUB_STATUS) == {
        "active_connections": 7,
        "requests_total": 345,
        "reading": 0,
        "writing": 1,
        "waiting": 6,
    }


def test_workers_from_uwsgi_stats():
    stats = {
        "workers": [{"id": 1, "status": "busy", "requests": 5, "pid": 9}, {"id": 2, "status": "idle", "requests": 0}]
    }
    assert workers_of(stats) == [{"id": 1, "status": "busy", "requests": 5}, {"id": 2, "status": "idle", "requests": 0}]


@pytest.fixture
def collector():
    polled = Collector()
    workers = [{"id": 1, "status": "busy", "requests": 3}, {"id": 2, "status": "idle", "requests": 1}]
    polled.replicas = {"service1": {"aaaa11112222": workers}, "service2": {}}
    polled.gateway = {"active_connections": 2, "requests_total": 10}
    polled.polled_at = 1000.0
    for at in (985.0, 995.0, 996.0):  # the first is older than the window
        polled.add(Served(at, "service1", "aaaa11112222", 200, 0.004))
    polled.counted[("service1", "aaaa11112222")] = [Counted(991.0, 40, 4, 0), Counted(1000.0, 97, 5, 56)]
    polled.identities["aaaa11112222"] = {"instance": "aaaa11112222", "name": "microstack-service1-1", "node": None}
    return polled


def test_the_snapshot_counts_each_replica_within_the_window_only(collector):
    snapshot = collector.snapshot(now=1000.0)
    (service1, service2) = snapshot["services"]
    (replica,) = service1["replicas"]
    assert (replica["instance"], replica["busy"], replica["idle"]) == ("aaaa11112222", 1, 1)
    assert replica["name"] == "microstack-service1-1"
    assert (replica["requests_per_second"], replica["unsampled"]) == (6.2, 0)  # (97 - 40 - 1) / 9 s, 56 sampled
    assert (replica["p50_ms"], replica["errors"]) == (4.0, 0)  # from the two log lines in the window
    assert (service1["requests_per_second"], service1["unsampled"]) == (6.2, 0)
    assert service2 == {"name": "service2", "replicas": [], "refused": [], "draining": [],
                        "requests_per_second": None,
                        "unsampled": None, **latency_figures(Requests())}  # fmt: skip
    assert snapshot["gateway"]["active_connections"] == 2


def test_a_flood_nobody_watches_keeps_only_the_window_and_little_memory():
    """20,000 requests a second for 20 s, the page never read: each second past the window is dropped as the
    next begins, and the window's requests are typed arrays, not an object each. Kept until the page was read,
    an unwatched page's log once grew by every request until its process was killed for memory (128 MB)."""
    collector = Collector()
    tracemalloc.start()
    try:
        for index in range(400_000):
            collector.add(Served(1000.0 + index / 20_000, "service1", "aaaa11112222", 200, 0.004))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 16 * 2**20, f"{held / 2**20:.0f} MiB held"
    assert collector.snapshot(now=1020.0)["gateway"]["requests_per_second"] == 20_000.0  # the last 10 s only


def test_a_replicas_rate_is_the_growth_of_its_request_counters_less_its_healthchecks():
    history = [Counted(990.0, 1000, 10, 0), Counted(995.0, 1300, 12, 298), Counted(1000.0, 1605, 15, 600)]
    assert counter_figures(history, 10.0) == {"requests_per_second": 60.0, "unsampled": 0}  # (605 - 5) / 10 s


def test_requests_the_counters_saw_and_no_log_line_sampled_are_counted_as_unsampled():
    history = [Counted(990.0, 0, 0, 100), Counted(1000.0, 6000, 5, 5100)]
    assert counter_figures(history, 10.0) == {"requests_per_second": 599.5, "unsampled": 995}


def test_before_two_polls_there_is_no_rate_and_a_restarted_worker_makes_none_negative():
    assert counter_figures([Counted(1000.0, 5, 0, 0)], 10.0) == {"requests_per_second": None, "unsampled": None}
    assert counter_figures([Counted(990.0, 500, 0, 0), Counted(1000.0, 20, 0, 20)], 10.0)["requests_per_second"] == 0


def test_a_replica_started_within_the_window_has_its_requests_spread_over_all_of_it():
    """Scaled from one replica to two under 60 requests/s: their rates add up to 60, not more."""
    old = [Counted(990.0, 0, 0, 0), Counted(995.0, 300, 0, 300), Counted(1000.0, 450, 0, 450)]
    new = [Counted(995.0, 0, 0, 0), Counted(1000.0, 150, 0, 150)]
    span = polled_span([old, new])
    rates = [counter_figures(history, span)["requests_per_second"] for history in (old, new)]
    assert (span, rates, sum(rates)) == (10.0, [45.0, 15.0], 60.0)


def test_counters_from_uwsgi_stats_with_the_healthchecks_metric():
    stats = {
        "workers": [{"id": 1, "requests": 5}, {"id": 2, "requests": 7}],
        "metrics": {"healthchecks": {"type": 0, "value": 3}},
    }
    assert counted_of(stats, 1000.0, sampled=8) == Counted(1000.0, 12, 3, 8)


def test_each_log_line_received_counts_for_its_replica(collector):
    assert collector.received[("service1", "aaaa11112222")] == 3


def test_a_replica_is_shown_by_its_compose_name_and_its_hostname(collector):
    page = app.page(collector.snapshot(now=1000.0))
    assert "<td>microstack-service1-1 (aaaa11112222)</td>" in page


def test_the_page_is_a_table_with_a_row_per_service_and_replica(collector, monkeypatch):
    monkeypatch.setattr(app, "collector", collector)
    page = app.page(collector.snapshot(now=1000.0))
    assert page.count('<tr class="service">') == 2
    assert '<tr class="replica" data-service="service1">' in page
    assert "<td>1 busy / 1 idle</td>" in page
    assert "{{" not in page


class Answer:
    def __init__(self, body: bytes):
        self.content, self.text = body, body.decode()


def answer_from(collector: Collector, answers: dict[str, bytes], monkeypatch) -> list[str]:
    """The collector's gateway, answering from a table; the paths it was asked, in order."""
    asked: list[str] = []

    def get(path: str) -> Answer:
        asked.append(path)
        return Answer(answers[path])

    def read(path: str, limit: int) -> bytes:
        body = get(path).content
        if len(body) > limit:
            raise ValueError(f"over {limit} bytes")
        return body

    monkeypatch.setattr(collector, "get", get)
    monkeypatch.setattr(collector, "read", read)
    return asked


def test_a_replica_over_tcp_is_shown_by_its_hostname_task_and_node_from_its_health(collector, monkeypatch):
    """On Swarm the upstreams name addresses: the status plane asks each replica's health once who it is."""
    upstreams = "upstream service1 {\n    server 10.0.1.5:3031 max_fails=0;\n}\n"
    health = b'{"service": "service1", "instance": "c0ffee123456", "name": "microstack_service1.2", "node": "node2"}'
    stats = b'{"workers": [{"id": 1, "status": "idle", "requests": 4}]}'
    answers = {
        "/_gateway/upstreams": upstreams.encode(),
        "/_gateway/stats/service1/10.0.1.5:3031": stats,
        "/_gateway/replica/service1/10.0.1.5:3031": health,
        "/_gateway/stub_status": STUB_STATUS.encode(),
        "/_gateway/refused": b"",
        "/_gateway/draining": b"",
    }
    asked = answer_from(collector, answers, monkeypatch)
    collector.poll()
    collector.poll()
    (replica,) = collector.snapshot()["services"][0]["replicas"]
    assert (replica["instance"], replica["address"]) == ("c0ffee123456", "10.0.1.5:3031")
    assert (replica["name"], replica["node"]) == ("microstack_service1.2", "node2")
    assert asked.count("/_gateway/replica/service1/10.0.1.5:3031") == 1  # once per replica, not per poll
    assert "<td>microstack_service1.2 (c0ffee123456) on node2</td>" in app.page(collector.snapshot())
    assert collector.identities.keys() == {"10.0.1.5:3031"}  # the replicas gone are forgotten


def test_names_in_the_page_are_escaped(collector):
    collector.replicas = {"<script>": {}}
    assert "<script>" not in app.rows_of(collector.snapshot(now=1000.0)).replace('<th scope="row">', "")


def test_an_unwatched_collector_polls_nothing_and_a_first_look_polls_at_once(monkeypatch):
    watched = Collector()
    polls = []
    monkeypatch.setattr(watched, "poll", lambda: polls.append(time.monotonic()))
    watched.watched.set()  # a stale wake-up: nobody has read the page
    threading.Thread(target=watched.poll_forever, daemon=True).start()
    time.sleep(0.3)  # an absence cannot be waited for: a poll would have come by now
    assert polls == []  # waits for a reader, polling nothing
    watched.watch()
    assert len(polls) == 1  # the first look polls before it answers
    deadline = time.monotonic() + 10
    while len(polls) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Polling goes on while watched, about a second apart.
    assert len(polls) >= 3 and polls[2] - polls[1] >= 0.9 * POLL_SECONDS, polls


def call(path: str) -> tuple[str, dict, bytes]:
    answered: dict = {}
    body = b"".join(
        app.application(
            {"PATH_INFO": path, "REQUEST_METHOD": "GET"},
            lambda status, headers: answered.update(status=status, headers=dict(headers)),
        )
    )
    return answered["status"], answered["headers"], body


def test_turned_off_the_page_and_its_data_are_a_json_404(monkeypatch):
    monkeypatch.setattr(app, "ENABLED", False)
    for path in ("/status/", "/status/data.json"):
        status, headers, body = call(path)
        assert status.startswith("404") and headers["Content-Type"] == "application/json"
        assert "STATUS_PAGE=false" in body.decode()


def test_its_own_script_and_style_are_served_with_their_types(monkeypatch):
    monkeypatch.setattr(app.collector, "watch", lambda: None)
    assert call("/status/status.js")[1]["Content-Type"].startswith("application/javascript")
    assert call("/status/status.css")[1]["Content-Type"].startswith("text/css")
    assert call("/status/nothing.js")[0].startswith("404")


def test_a_replica_that_appears_while_the_page_polls_is_counted_from_zero(monkeypatch):
    polling = Collector()
    clock = {"now": 1000.0}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    polling.polled_at, polling.counted_since = 999.0, 990.0
    polling.count("service1", "new", {"workers": [{"requests": 30}], "metrics": {"healthchecks": {"value": 2}}})
    (history,) = polling.counted.values()
    assert [(counted.requests, counted.healthchecks) for counted in history] == [(0, 0), (30, 2)]


def test_a_replica_seen_at_the_first_poll_is_counted_from_that_poll(monkeypatch):
    polling = Collector()
    monkeypatch.setattr(time, "time", lambda: 1000.0)
    polling.counted_since = 1000.0
    polling.count("service1", "old", {"workers": [{"requests": 30}]})
    (history,) = polling.counted.values()
    assert [counted.requests for counted in history] == [30]


HOSTILE_UPSTREAMS = 'upstream "service4" {\n    server "unix:/run/uwsgi/service4/bbbb11112222.sock" max_fails=0;\n}\n'


def test_a_name_a_replica_wrote_is_shown_only_if_a_container_could_have_it(collector, monkeypatch):
    """A replica's .name is its service's to write: /etc/passwd behind it, or a page of markup, is not a name."""
    shown = {}
    for written in (b"microstack-service4-1\n", b"root:x:0:0:root:/root:/bin/bash\n", b"<b>x</b>", b"a" * 100):
        collector.identities.clear()
        answers = {
            "/_gateway/upstreams": HOSTILE_UPSTREAMS.encode(),
            "/_gateway/stats/service4/bbbb11112222": b'{"workers": []}',
            "/_gateway/names/service4/bbbb11112222": written,
            "/_gateway/stub_status": STUB_STATUS.encode(),
            "/_gateway/refused": b"",
            "/_gateway/draining": b"",
        }
        answer_from(collector, answers, monkeypatch)
        collector.poll()
        shown[written] = collector.identities.get("bbbb11112222", {}).get("name")
    assert list(shown.values()) == ["microstack-service4-1", None, None, None]


def test_stats_larger_than_a_replica_can_have_leave_the_replica_out(collector, monkeypatch):
    answers = {
        "/_gateway/upstreams": HOSTILE_UPSTREAMS.encode(),
        "/_gateway/stats/service4/bbbb11112222": b'{"workers": [' + b" " * STATS_BYTES + b"]}",
        "/_gateway/names/service4/bbbb11112222": b"microstack-service4-1\n",
        "/_gateway/stub_status": STUB_STATUS.encode(),
        "/_gateway/refused": b"",
        "/_gateway/draining": b"",
    }
    answer_from(collector, answers, monkeypatch)
    collector.poll()
    assert collector.replicas["service4"] == {}


def test_what_the_gateway_refused_is_shown_under_its_service_escaped(collector, monkeypatch):
    refused = "service4\tzz;?}?server?{?listen.sock\tnot a replica's name\nservice4\tleak.name\tnot a replica's file\n"
    answers = {
        "/_gateway/upstreams": HOSTILE_UPSTREAMS.encode(),
        "/_gateway/stats/service4/bbbb11112222": b'{"workers": []}',
        "/_gateway/names/service4/bbbb11112222": b"microstack-service4-1\n",
        "/_gateway/stub_status": STUB_STATUS.encode(),
        "/_gateway/refused": refused.encode(),
        "/_gateway/draining": b"",
    }
    answer_from(collector, answers, monkeypatch)
    collector.poll()
    (service4,) = [service for service in collector.snapshot()["services"] if service["name"] == "service4"]
    assert service4["refused"] == [
        {"name": "zz;?}?server?{?listen.sock", "why": "not a replica's name"},
        {"name": "leak.name", "why": "not a replica's file"},
    ]
    assert '<tr class="refused" data-service="service4"><td></td><td>refused: leak.name</td>' in app.rows_of(
        collector.snapshot()
    )


def test_the_autoscalers_last_decisions_are_shown_escaped_and_anything_else_is_left_out(tmp_path):
    decisions: list[object] = [{"at": 0, "service": "service1", "replicas": 2, "why": "saturated <b>"}] * 12
    decisions += [{"at": 0, "service": "no such </li>", "replicas": 2, "why": ""}, {"at": "then"}, "text"]
    decisions += [{"at": at, "service": "service1", "replicas": 2, "why": ""} for at in (1e300, float("nan"))]
    written = tmp_path / "autoscale.json"
    written.write_text(json.dumps(decisions))
    shown = autoscale_decisions(written)
    assert len(shown) == 5  # of the last ten, those the autoscaler could have written
    assert shown[0] == {"at": "1970-01-01T00:00:00Z", "service": "service1", "replicas": 2, "why": "saturated <b>"}
    assert "<li>1970-01-01T00:00:00Z service1: 2 replica(s): saturated &lt;b&gt;</li>" in app.page(
        {**Collector().snapshot(), "autoscale": shown}
    )
    written.write_text(" " * AUTOSCALE_BYTES + "[]")
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps(decisions))
    assert autoscale_decisions(written) == autoscale_decisions(link) == autoscale_decisions(tmp_path / "none") == []
