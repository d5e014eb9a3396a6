"""Scaling one service out and back in: replicas get their own sockets, share the load, and lose no request."""

import subprocess
import sys
import time
from collections import Counter

import pytest

from project import ACCOUNTS, GATEWAY, GATEWAY_UPSTREAMS, NOTIFICATIONS, routed_replicas
from stack import SteadyLoad, tree_copy, wait_until

# A stack of its own, shared with the other "rollouts" modules: it scales and redeploys services.
pytestmark = pytest.mark.own_stack("rollouts")

HEALTH = f"/api/{ACCOUNTS}/health/"
# The accounts service's settings that make scale writes to .env: the suite's stack sets them in its environment,
# which Compose would read before the copy's .env.
PREFIX = f"{ACCOUNTS.upper()}_"


@pytest.fixture(scope="module")
def scaled_to_three(stack):
    """The accounts service scaled to three replicas once, for the tests that only look at them (the file's first):
    their hostnames. Scaling is what the tests after them change."""
    stack.scale(ACCOUNTS, 3)
    yield [container.attrs["Config"]["Hostname"] for container in stack.containers(ACCOUNTS)]
    stack.scale(ACCOUNTS, 1)


def test_new_replicas_receive_traffic_within_five_seconds(stack, scaled_to_three):
    seen = stack.replicas_answering(HEALTH, 3, timeout=5)
    assert seen == {f"{ACCOUNTS}/{hostname}" for hostname in scaled_to_three}


def test_three_replicas_each_serve_at_least_a_fifth_of_the_requests(stack, scaled_to_three):
    assert len(stack.replicas_answering(HEALTH, 3, timeout=5)) == 3  # every replica is routed before counting
    served = Counter(stack.served_by(HEALTH) for _ in range(300))
    assert len(served) == 3
    assert min(served.values()) >= 60


def test_each_replica_binds_its_own_socket(stack, scaled_to_three):
    listing = stack.container(GATEWAY).exec_run(["ls", f"/run/uwsgi/{ACCOUNTS}"]).output.decode().split()
    sockets = [name for name in listing if name.endswith(".sock")]
    assert sorted(sockets) == sorted(f"{hostname}.sock" for hostname in scaled_to_three)


def test_scaling_back_to_one_loses_no_request_and_logs_no_gateway_error_under_steady_load(stack, three_replicas):
    """The drain handshake: a replica leaves the gateway's routes before its socket closes. On main, scaling in
    logged a CRITICAL "connect() ... failed (2: No such file or directory)" per request in flight. (Scaling out
    under load, with the gateway's log read after it, is the rolling deploy's first half: test_deploy.py.)"""
    with SteadyLoad(stack, HEALTH) as load:
        assert wait_until(lambda: load.sent >= 20, timeout=10, interval=0.05)
        since = time.time()
        stack.scale(ACCOUNTS, 1)
        scaled_at = load.sent
        assert wait_until(lambda: load.sent >= scaled_at + 50, timeout=10, interval=0.05)
    assert set(load.outcomes) == {200}, load.outcomes
    assert stack.gateway_errors(since) == []


def test_make_scale_of_the_workers_rolls_the_service_losing_no_request_of_a_client_that_never_retries(stack, tmp_path):
    """README's first scaling step: on main, the one replica was replaced, not rolled (131 of 7,200 requests 503).
    Run from a copy of the tree: make scale writes the copy's .env, not this one's."""
    tree = tree_copy(tmp_path / "tree")
    environment = {key: value for key, value in stack.compose_environment().items() if not key.startswith(PREFIX)}
    environment["COMPOSE_PROJECT_NAME"] = stack.project
    old = {container.id for container in stack.containers(ACCOUNTS)}
    scale = [sys.executable, str(tree / "scripts" / "scale.py"), ACCOUNTS, "--processes", "4", "--threads", "1"]
    try:
        with SteadyLoad(stack, HEALTH, retry=False) as load:
            assert wait_until(lambda: load.sent >= 20, timeout=10, interval=0.05)
            since = time.time()
            result = subprocess.run(scale, cwd=tree, env=environment, capture_output=True, text=True, timeout=300)
            scaled_at = load.sent
            assert wait_until(lambda: load.sent >= scaled_at + 50, timeout=10, interval=0.05)
        assert result.returncode == 0, result.stderr
        assert set(load.outcomes) == {200}, load.outcomes
        assert stack.gateway_errors(since) == []
        assert "rolling" in result.stdout and "4 processes x 1 threads" in result.stdout, result.stdout
        assert not old & {container.id for container in stack.containers(ACCOUNTS)}
    finally:
        # The suite's own settings again, pass or fail: the "rollouts" modules after this one share the stack.
        stack.compose("up", "--detach", "--wait", timeout=300)


def test_a_replica_killed_with_sigkill_leaves_the_service_answering(stack, three_replicas):
    victim = stack.containers(ACCOUNTS)[0]
    victim_hostname = victim.attrs["Config"]["Hostname"]
    victim.kill()  # SIGKILL: no drain, the socket file stays behind

    with SteadyLoad(stack, HEALTH, max_requests=300) as load:
        assert wait_until(lambda: load.sent >= 300, timeout=30, interval=0.05)
    assert set(load.outcomes) == {200}, load.outcomes

    # A surviving replica notices the dead socket and removes it, so the gateway forgets it.
    gateway = stack.container(GATEWAY)
    dead_socket = f"/run/uwsgi/{ACCOUNTS}/{victim_hostname}.sock"
    assert wait_until(lambda: gateway.exec_run(["test", "-e", dead_socket]).exit_code != 0, timeout=25)
    victim.remove(force=True)


def watcher_pid(gateway) -> int:
    return int(gateway.exec_run(["cat", "/tmp/nginx/watcher.pid"]).output.decode())


def reports_healthy(gateway) -> bool:
    return gateway.exec_run(["gateway-healthcheck"]).exit_code == 0


def routed_sockets(gateway, service: str) -> int:
    """Sockets of service in the upstreams nginx last loaded (not the watcher's candidate, which it may refuse)."""
    upstreams = gateway.exec_run(["cat", GATEWAY_UPSTREAMS]).output.decode()
    return sum(1 for replica in routed_replicas(upstreams)[service] if replica.startswith("unix:"))


def test_a_killed_replica_watcher_is_started_again_and_keeps_routing(stack):
    gateway = stack.container(GATEWAY)
    killed = watcher_pid(gateway)
    gateway.exec_run(["bash", "-c", f"kill -9 {killed}"])
    assert wait_until(lambda: watcher_pid(gateway) != killed, timeout=5)
    assert wait_until(lambda: reports_healthy(gateway), timeout=5)
    stack.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", f"{NOTIFICATIONS}=2", NOTIFICATIONS)
    try:
        assert wait_until(lambda: routed_sockets(gateway, NOTIFICATIONS) == 2, timeout=30)
    finally:
        stack.scale(NOTIFICATIONS, 1)


def test_a_failing_reload_keeps_the_last_good_routes_reports_unhealthy_and_recovers(stack):
    gateway = stack.container(GATEWAY)
    broken = "/tmp/nginx/conf/conf.d/broken.conf"
    gateway.exec_run(["bash", "-c", f"echo 'this is not nginx configuration;' > {broken}"])
    try:
        stack.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", f"{NOTIFICATIONS}=2", NOTIFICATIONS)
        assert wait_until(lambda: not reports_healthy(gateway), timeout=30)
        assert routed_sockets(gateway, NOTIFICATIONS) == 1  # the last good upstreams, still serving
        assert stack.answers(f"/api/{NOTIFICATIONS}/health/")
    finally:
        gateway.exec_run(["rm", "-f", broken])
    try:
        assert wait_until(lambda: reports_healthy(gateway), timeout=10)
        assert routed_sockets(gateway, NOTIFICATIONS) == 2
    finally:
        stack.scale(NOTIFICATIONS, 1)
