"""A compromised service against the gateway and the status page (docs/security.md, "A service's volume"):
whatever it writes into its own socket volume, as its own user, reaches no further than its own traffic.

Each probe plants files in service4's volume from inside its container, as the review that found them did. Then
a steady client of service1 has lost no request and was served by service1 alone, the gateway is healthy and
comes back healthy from a restart with the files still there, and no answer carries anything from outside the
volume.
"""

import hashlib
import re
import socket
import time

import pytest

from project import ACCOUNTS, GATEWAY, GATEWAY_UPSTREAMS, NOTIFICATIONS, routed_replicas
from stack import SteadyLoad, ask_the_gateway, seconds, wait_until

# On the shared stack, after every other module of it: it plants files (each removed after its probe) and
# restarts the gateway.
pytestmark = pytest.mark.runs_last

ATTACKER, NEIGHBOUR = NOTIFICATIONS, ACCOUNTS
# In the gateway's container: what it refused in the services' volumes.
REFUSED_FILE = "/tmp/nginx/generated/refused"
# What no answer may carry: the first line of /etc/passwd, a private key.
OUTSIDE = ("root:x:0:0", "PRIVATE KEY")
# Python run in the attacker's container, in its socket volume, before each probe's own lines.
PRELUDE = """
import os, socket
def real_socket(name):
    socket.socket(socket.AF_UNIX).bind(name)  # bound, never listening: the file stays
def link(name, target):
    os.symlink(target, name)
"""
CONFIGURATION = (
    "zz; } server { listen 8080; server_name ~.; location ~ . { include uwsgi_params; uwsgi_pass x; } } "
    "upstream x { server unix:b.sock"
)


def hostname(stack, service: str) -> str:
    return stack.container(service).attrs["Config"]["Hostname"]


def plant(stack, script: str) -> str:
    """Runs Python in the attacker's container as its own user, in its socket volume; what it printed."""
    result = stack.container(ATTACKER).exec_run(["python", "-c", PRELUDE + script], workdir="/run/uwsgi")
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode()


def remove(stack, names: list[str]) -> None:
    """Removes what a probe planted. A bound socket nothing listens on may be gone already: the replicas' own
    healthcheck sweeps such dead sockets after 10 s (servicekit/sockets.py, remove_dead_sockets)."""
    plant(stack, f"for name in {names!r}:\n    if os.path.lexists(name):\n        os.unlink(name)")


def shown_as_refused(name: str) -> str:
    """A name as the gateway lists it refused (nginx/entrypoint.sh, refuse)."""
    return re.sub(r"[^0-9A-Za-z._-]", "?", name)[:64]


def refused(stack) -> set[str]:
    text = stack.container(GATEWAY).exec_run(["cat", REFUSED_FILE]).output.decode()
    return {line.split("\t")[1] for line in text.splitlines() if line.count("\t") == 2}


def routed(stack, service: str) -> list[str]:
    upstreams = stack.container(GATEWAY).exec_run(["cat", GATEWAY_UPSTREAMS]).output.decode()
    return routed_replicas(upstreams)[service]


def gateway_passes_its_healthcheck(stack) -> bool:
    """The gateway's own healthcheck, run now: its watcher completed a pass in the last 5 s, and it serves."""
    return stack.container(GATEWAY).exec_run(["gateway-healthcheck"]).exit_code == 0


def answers_seen(stack) -> dict[str, tuple[int, str]]:
    """What the attacker (its key route) and the public (the status page) read of what the gateway serves."""
    seen = ask_the_gateway(stack.container(ATTACKER), "/run/gateway/internal.sock", [f"/keys/{ATTACKER}"])
    status_page = stack.get("/status/data.json")
    return {**{path: (status, body) for path, (status, body) in seen.items()},
            "/status/data.json": (status_page.status_code, status_page.text)}  # fmt: skip


def probes(own: str, neighbour: str) -> dict[str, tuple[str, list[str], list[str]]]:
    """Each probe: what it plants (Python), the names it plants (removed after it), the names the gateway must
    list as refused."""
    socket_of_its_own = f"{own}.sock"
    named = {
        "a name that is nginx configuration": CONFIGURATION,
        "a name with a space": "a b.sock",
        "a name with a newline": "a\nb.sock",
        "a name of 250 characters": "a" * 245 + ".sock",
    }
    table = {probe: (f"link({name!r}, {socket_of_its_own!r})", [name], [name]) for probe, name in named.items()}
    targets = {
        "a link to another service's socket": f"/run/uwsgi/{NEIGHBOUR}/{neighbour}.sock",
        "a link to the internal listener": "/run/gateway/internal.sock",
        "a link to the status plane": "/run/gateway-status/status.sock",
        "a link to the status page's own socket": "/run/status/status.sock",
    }
    for probe, target in targets.items():
        table[probe] = (f"link('evil.sock', {target!r})", ["evil.sock"], ["evil.sock"])
    table["a replica whose name is /etc/passwd"] = (
        f"link('leak.sock', '{own}.sock'); link('leak.stats', '{own}.stats'); link('leak.name', '/etc/passwd')",
        ["leak.sock", "leak.stats", "leak.name"],
        ["leak.sock", "leak.stats", "leak.name"],
    )
    # A real socket, routed to; its stats a link to the status plane, which would then ask itself.
    table["a stats loop through the status plane"] = (
        "real_socket('loop.sock'); link('loop.stats', '/run/gateway-status/status.sock')",
        ["loop.sock", "loop.stats"],
        ["loop.stats"],
    )
    return table


PROBES = list(probes("own", "neighbour"))


def replicas_of(stack, service: str) -> set[str]:
    """Who may answer a service's route: its replicas, as X-Served-By names them."""
    return {f"{service}/{container.attrs['Config']['Hostname']}" for container in stack.containers(service)}


@pytest.mark.parametrize("probe", PROBES)
def test_a_hostile_file_in_a_services_volume_reaches_no_further_than_its_own_traffic(stack, probe):
    own, neighbour = hostname(stack, ATTACKER), hostname(stack, NEIGHBOUR)
    script, planted, to_refuse = probes(own, neighbour)[probe]
    try:
        with (
            SteadyLoad(stack, f"/api/{NEIGHBOUR}/health", max_seconds=seconds(60)) as load,
            SteadyLoad(stack, f"/api/{ATTACKER}/health", max_seconds=seconds(60)) as own_load,
        ):
            plant(stack, script)
            listed = wait_until(lambda: {shown_as_refused(name) for name in to_refuse} <= refused(stack), timeout=10)
            # The status page polls the replicas while it is watched: read here for three seconds, as a person
            # watching it would (a duration of watching, not a wait for a condition).
            for _ in range(6):
                seen = answers_seen(stack)
                time.sleep(0.5)
            healthy = wait_until(lambda: gateway_passes_its_healthcheck(stack), timeout=10)
        # For the record (pytest -s): what a client of another service saw, the gateway's health, what came back.
        got = {path: f"{status} {body[:60]!r}" for path, (status, body) in seen.items()}
        print(f"\n{probe}: sent {load.sent}, failed {load.failed}, served by {dict(load.served_by)}; its own route: "
              f"sent {own_load.sent}, failed {own_load.failed}, served by {dict(own_load.served_by)}; gateway "
              f"healthy {healthy}; refused {sorted(refused(stack))}; answers {got}")  # fmt: skip
        assert (load.failed, set(load.served_by) - replicas_of(stack, NEIGHBOUR)) == (0, set()), load.outcomes
        # Its own traffic still reaches only its own replicas: no link takes it to a listener of the gateway's,
        # the status page's or another service's.
        assert (own_load.failed, set(own_load.served_by) - replicas_of(stack, ATTACKER)) == (0, set())
        assert load.sent > 0 and own_load.sent > 0
        assert [part for part in OUTSIDE for _, body in seen.values() if part in body] == []
        assert healthy
        assert listed, refused(stack)
        assert not [address for address in routed(stack, ATTACKER) if "/evil" in address or "/leak" in address]
        stack.container(GATEWAY).restart(timeout=10)
        assert wait_until(lambda: gateway_passes_its_healthcheck(stack), timeout=30)
        assert stack.get(f"/api/{NEIGHBOUR}/health").status_code == 200
    finally:
        remove(stack, planted)


def test_three_thousand_names_stop_at_the_volumes_bound_and_the_gateway_routes_at_most_32(stack):
    script = """
made = 0
try:
    while made < 3000:
        real_socket(f"n{made:04d}.sock")
        made += 1
except OSError:
    pass
print(made)
"""
    made = int(plant(stack, script).split()[-1])
    try:
        assert made < 300  # the volume holds 256 files (docker-compose.yml)
        assert wait_until(lambda: len(routed(stack, ATTACKER)) == 32, timeout=10), routed(stack, ATTACKER)
        assert any(name.startswith("n0") for name in refused(stack))
        assert stack.get("/status/data.json").status_code == 200
        assert stack.get(f"/api/{NEIGHBOUR}/health").status_code == 200
        assert gateway_passes_its_healthcheck(stack)
    finally:
        remove(stack, [f"n{index:04d}.sock" for index in range(made)])


def test_a_service_cannot_write_more_than_a_mebibyte_into_its_socket_volume(stack):
    script = """
written = 0
try:
    with open("filler", "wb") as filler:
        while written < 2**30:
            filler.write(b"x" * 2**16)
            filler.flush()
            written += 2**16
except OSError:
    pass
print(written)
"""
    try:
        assert int(plant(stack, script).split()[-1]) <= 2**20
    finally:
        remove(stack, ["filler"])


def test_the_routes_file_every_service_reads_names_no_replica(stack):
    """A replica reads it to know when it is no longer routed: it finds the digest of its own socket's name."""
    routes = stack.container(ATTACKER).exec_run(["cat", "/run/gateway/routes"]).output.decode().split()
    names = {hostname(stack, service) for service in (ACCOUNTS, ATTACKER)}
    assert routes and all(re.fullmatch(r"[0-9a-f]{64}", line) for line in routes)
    assert not [name for name in names if any(name in line for line in routes)]
    assert hashlib.sha256(f"{hostname(stack, ATTACKER)}.sock".encode()).hexdigest() in routes


def test_an_http_version_the_gateway_does_not_speak_is_a_json_505(stack):
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as connection:
        connection.sendall(b"GET /api/service1/health HTTP/2.0\r\nHost: localhost\r\n\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 505"), head
    assert b"Content-Type: application/json" in head
    assert b'"code": "http_version_not_supported"' in body
