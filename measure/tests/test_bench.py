"""make bench's arithmetic: wrk's report read, a row measured in turns added up as one; and the order rows' script."""

import http.server
import json
import shutil
import threading
from collections import Counter

from bench import Row, at_percentile_ms, combined, parse_wrk, run_wrk, wrk_script

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8080/api/catalog/health/
  2 threads and 32 connections
  6000 requests in 1.00s, 1.2MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   5990.12
Transfer/sec:      1.20MB
load_us 1001663 6000
latency_us 900 5000
latency_us 2000 940
latency_us 40000 60
"""


def turn(rate: float, seconds: float, latency_us: Counter[int], cpu_per_1000: float, service_us: float) -> Row:
    requests = latency_us.total()
    assert requests == round(rate * seconds)
    return Row(
        name="minimal endpoint",
        requests_per_second=rate,
        p50_ms=at_percentile_ms(latency_us, 0.5),
        p99_ms=at_percentile_ms(latency_us, 0.99),
        requests=requests,
        errors=0,
        seconds=seconds,
        latency_us=latency_us,
        cpu_seconds_per_1000=cpu_per_1000,
        cpu_split_us={"the service": service_us},
    )


def test_wrks_report_gives_the_rate_over_the_loads_own_length_and_each_latency():
    row = parse_wrk("minimal endpoint", WRK_OUTPUT)

    assert row.requests == 6000
    assert row.seconds == 1.001663
    assert round(row.requests_per_second, 1) == round(6000 / 1.001663, 1)
    assert row.latency_us == Counter({900: 5000, 2000: 940, 40000: 60})
    assert (row.p50_ms, row.p99_ms) == (0.9, 40.0)  # the 5,941st of 6,000 is in the slowest 60
    assert row.errors_by_kind == {"not 2xx or 3xx": 3}


def test_turns_add_up_to_one_row_weighted_by_their_requests():
    fast = turn(6000, 1.0, Counter({1000: 6000}), cpu_per_1000=0.1, service_us=100)
    slow = turn(2000, 2.0, Counter({1000: 3900, 50000: 100}), cpu_per_1000=0.3, service_us=300)

    row = combined([fast, slow])

    assert row.requests == 10000
    assert row.requests_per_second == 10000 / 3  # all requests over all the time, not the mean of the rates (4,000)
    assert row.cpu_seconds_per_1000 == (0.1 * 6000 + 0.3 * 4000) / 10000
    assert row.cpu_split_us == {"the service": (100 * 6000 + 300 * 4000) / 10000}
    assert row.p99_ms == 50.0  # 100 of 10,000 slow: the tail of one turn stays the tail of the row
    assert row.p50_ms == 1.0


def test_the_percentile_of_counted_latencies_is_the_nearest_rank_of_them_listed():
    latency_us = Counter({300: 7, 1200: 90, 2500: 2, 99000: 1})
    listed = sorted(value / 1000 for value, count in latency_us.items() for _ in range(count))

    for fraction in (0.0, 0.07, 0.5, 0.97, 0.99, 0.999):
        assert at_percentile_ms(latency_us, fraction) == listed[min(len(listed) - 1, int(len(listed) * fraction))]


def test_logins_answered_after_the_time_count_in_the_cpu_but_not_in_the_rate():
    one_turn = turn(6, 5.0, Counter({600_000: 30}), cpu_per_1000=150, service_us=150_000)
    other_turn = turn(6, 5.0, Counter({600_000: 30}), cpu_per_1000=160, service_us=160_000)
    one_turn.drained, other_turn.drained = 1, 3  # each turn's CPU figure was per the 31 and 33 answered
    one_turn.latency_us[900_000] += 1
    other_turn.latency_us[900_000] += 3

    row = combined([one_turn, other_turn])

    assert (row.requests, row.drained, row.answered) == (60, 4, 64)
    assert row.requests_per_second == 6  # 60 answered within 10 s; the 4 drained later are not in the rate
    assert row.cpu_seconds_per_1000 == (150 * 31 + 160 * 33) / 64
    assert row.latency_us.total() == 64


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 201 to every POST, and keeps what each carried."""

    protocol_version = "HTTP/1.1"  # keep-alive, as wrk's connections are
    seen: list[tuple[str | None, str | None, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.headers["Idempotency-Key"], self.headers["Authorization"], body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def test_the_order_rows_script_sends_each_order_once_with_its_own_key_its_bearer_and_its_body():
    """The bench's invariant (stock and events against orders placed) holds only if no order is a replay."""
    assert shutil.which("wrk"), "wrk is missing: make test installs it (scripts/test-tools.sh)"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = wrk_script(headers={"Authorization": "Bearer t0ken"}, body={"product_id": 7, "quantity": 1},
                            unique_keys=True)  # fmt: skip
        row = run_wrk(f"http://127.0.0.1:{server.server_port}/orders", connections=4, script=script, seconds=1)
    finally:
        server.shutdown()
        server.server_close()
    keys = [key for key, _, _ in Recorder.seen]
    assert row.requests > 10 and len(keys) >= row.requests
    assert len(set(keys)) == len(keys)
    assert {(authorization, json.loads(body)["product_id"]) for _, authorization, body in Recorder.seen} == {
        ("Bearer t0ken", 7)
    }
