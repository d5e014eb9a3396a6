"""Scaling one service out and back in: replicas get their own sockets, share the load, and lose no request."""

import time
from collections import Counter

import pytest

from stack import ACCOUNTS, GATEWAY, SteadyLoad, wait_until

HEALTH = f"/api/{ACCOUNTS}/health/"


@pytest.fixture
def three_replicas(stack):
    stack.scale(ACCOUNTS, 3)
    yield [container.attrs["Config"]["Hostname"] for container in stack.containers(ACCOUNTS)]
    stack.scale(ACCOUNTS, 1)


def test_new_replicas_receive_traffic_within_five_seconds(stack, three_replicas):
    seen = set()
    assert wait_until(lambda: seen.add(stack.served_by(HEALTH)) or len(seen) == 3, timeout=5, interval=0.01)
    assert seen == {f"{ACCOUNTS}/{hostname}" for hostname in three_replicas}


def test_three_replicas_each_serve_at_least_a_fifth_of_the_requests(stack, three_replicas):
    wait_until(lambda: len({stack.served_by(HEALTH) for _ in range(12)}) == 3, timeout=5)
    served = Counter(stack.served_by(HEALTH) for _ in range(300))
    assert len(served) == 3
    assert min(served.values()) >= 60


def test_each_replica_binds_its_own_socket(stack, three_replicas):
    listing = stack.container(GATEWAY).exec_run(["ls", f"/run/uwsgi/{ACCOUNTS}"]).output.decode().split()
    sockets = [name for name in listing if name.endswith(".sock")]
    assert sorted(sockets) == sorted(f"{hostname}.sock" for hostname in three_replicas)


def test_scaling_back_to_one_loses_no_request_under_steady_load(stack, three_replicas):
    with SteadyLoad(stack, HEALTH) as load:
        time.sleep(1)
        stack.scale(ACCOUNTS, 1)
        time.sleep(2)
    assert set(load.outcomes) == {200}, load.outcomes
    assert load.outcomes[200] > 50


def test_a_replica_killed_with_sigkill_leaves_the_service_answering(stack, three_replicas):
    victim = stack.containers(ACCOUNTS)[0]
    victim_hostname = victim.attrs["Config"]["Hostname"]
    victim.kill()  # SIGKILL: no drain, the socket file stays behind

    with SteadyLoad(stack, HEALTH, max_seconds=3) as load:
        time.sleep(3)
    assert set(load.outcomes) == {200}, load.outcomes

    # A surviving replica notices the dead socket and removes it, so the gateway forgets it.
    gateway = stack.container(GATEWAY)
    dead_socket = f"/run/uwsgi/{ACCOUNTS}/{victim_hostname}.sock"
    assert wait_until(lambda: gateway.exec_run(["test", "-e", dead_socket]).exit_code != 0, timeout=25)
    victim.remove(force=True)
