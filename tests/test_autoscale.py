"""`make autoscale` closes the loop on a stack of its own (one worker of one thread for accounts, Prometheus on):
under a sustained load of logins that keeps its worker always busy it adds a replica (MAX=2), and once the load has
ended removes it again, losing no request, each decision said and shown on the status page; Prometheus's saturation
alert fires under the load and clears after it. The policy's
every branch (hysteresis, MIN and MAX, a replica that did not help) is unit-tested in scripts/tests."""

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from project import ACCOUNTS
from stack import AUTOSCALED_ACCOUNTS, Autoscaler, Logins, Stack, tree_copy, variant_stack, wait_until

# Shortened from the defaults (30 s loaded, 90 s quiet): the loop, not the patience, is tested. Out after 25 s:
# longer than the saturation alert takes to fire (15 s, rules evaluated every 5 s), so it fires on one replica, as
# an operator would see it before the autoscaler acts (after, the new replica's rate builds up first).
POLICY = ["--interval", "1", "--out-after", "25", "--in-after", "10"]
LOAD_SECONDS = 150  # a bound: the load ends once the alert has fired


@variant_stack
def one_worker_variant(shared: Stack) -> Stack:
    """From a copy of the tree: the autoscaler keeps the replicas in its .env, as make scale does."""
    directory = Path(tempfile.mkdtemp(prefix="microstack-autoscale-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)  # once its stack is down: the session's end
    project = f"microstack-test-autoscale-{uuid.uuid4().hex[:8]}"
    return Stack(project, AUTOSCALED_ACCOUNTS, root=tree_copy(directory / "tree"))


@pytest.fixture(scope="module")
def one_worker_stack(stack_pool):
    yield from stack_pool.variant(one_worker_variant)


SATURATION_ALERT = f'ALERTS{{alertname="ServiceSaturated", service="{ACCOUNTS}", alertstate="firing"}}'


def saturation_alert_firing(stack: Stack, within: str | None = None) -> bool:
    """Prometheus's ServiceSaturated alert (prometheus/rules.yml) for accounts is firing, or fired within that
    time (a replica added meanwhile lowers the figure while its own rate builds up, so the alert may wait)."""
    query = SATURATION_ALERT if within is None else f"max_over_time({SATURATION_ALERT}[{within}])"
    return bool(stack.prometheus_query(query))


def test_autoscale_adds_a_replica_under_load_and_removes_it_once_the_load_ends_losing_no_request_and_the_alert_clears(
    one_worker_stack,
):
    stack = one_worker_stack
    username, password = f"autoscaled-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    assert stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": password}).status_code == 201
    autoscaler = Autoscaler(stack, 1, 2, *POLICY, "--seconds", "300")

    def scaled_in_and_said_so() -> bool:  # its scale (make scale's) has returned: nothing of it runs on
        return len(stack.containers(ACCOUNTS)) == 1 and autoscaler.first("1 replica(s) serving") is not None

    try:
        with Logins(stack, {"username": username, "password": password}, clients=2, max_seconds=LOAD_SECONDS) as load:
            scaled_out = wait_until(lambda: len(stack.containers(ACCOUNTS)) == 2, timeout=120)
            # The second replica takes logins too; two clients still keep both busy: the alert fires.
            both_served = scaled_out and wait_until(lambda: len(load.served_by) >= 2, timeout=30)
            alerted = both_served and wait_until(lambda: saturation_alert_firing(stack, within="3m"), timeout=90)
        scaled_in = alerted and wait_until(scaled_in_and_said_so, timeout=120)
        alert_cleared = scaled_in and wait_until(lambda: not saturation_alert_firing(stack), timeout=60)
    finally:
        autoscaler.stop()
    said = autoscaler.said()
    print(said)  # the decisions, for whoever reads a run
    assert scaled_out and both_served and alerted and scaled_in and alert_cleared, (said, load.outcomes, load.served_by)
    assert set(load.outcomes) == {200}, load.outcomes
    decisions = [line for line in said.splitlines() if f"{ACCOUNTS}: " in line]
    assert any("1 -> 2 replicas: saturated" in line for line in decisions), said
    assert any("2 -> 1 replicas: quiet" in line for line in decisions), said
    shown = [decision["replicas"] for decision in stack.status_page()["autoscale"]]
    assert shown[0] == 2 and shown[-1] == 1, shown
