"""Where a replica's uWSGI listens, and clearing the sockets dead replicas left behind.

Unix transport (the default): a socket named by the container's hostname in the service's socket volume, which
all replicas of the service share with the gateway; the gateway routes to every socket it finds there.
TCP transport (for several hosts): a port, found by the gateway through Docker's DNS.
"""

import os
import socket
import subprocess  # nosec B404
import time
from pathlib import Path

SOCKET_DIR = Path(os.environ.get("SOCKET_DIR", "/run/uwsgi"))
TRANSPORT = os.environ.get("SERVICE_TRANSPORT", "unix")
TCP_PORT = int(os.environ.get("SERVICE_TCP_PORT", "3031"))
# A socket younger than this may belong to a replica still starting; it is never judged dead.
DEAD_SOCKET_MIN_AGE_SECONDS = 10


def own_socket_path() -> Path:
    return SOCKET_DIR / f"{socket.gethostname()}.sock"


def publish_container_name() -> None:
    """Writes, beside this replica's socket, the name people know it by (`docker compose ps`, `make scale`): the
    name Docker's DNS gives its address. The hostname the socket is named by is only the container's id."""
    try:
        address = socket.gethostbyname(socket.gethostname())
        # getent from the image's libc, asked for an address this container has: no input from outside.
        lookup = ["/usr/bin/getent", "-s", "dns", "hosts", address]
        name = subprocess.run(lookup, capture_output=True, text=True, timeout=2).stdout.split()[1]  # nosec B603
    except (OSError, IndexError, subprocess.SubprocessError):
        return  # no DNS name (a plain `docker run`): the page shows the hostname alone
    own_socket_path().with_suffix(".name").write_text(name.split(".")[0] + "\n")


def listen_address() -> str:
    """The value of uWSGI's `socket` option for this replica."""
    if TRANSPORT == "tcp":
        return f"0.0.0.0:{TCP_PORT}"
    return str(own_socket_path())


def connect(timeout: float) -> socket.socket:
    """A connection to this replica's own uWSGI, over whichever transport it listens on."""
    if TRANSPORT == "tcp":
        return socket.create_connection(("127.0.0.1", TCP_PORT), timeout=timeout)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(str(own_socket_path()))
    except OSError:
        connection.close()
        raise
    return connection


def is_dead(path: Path) -> bool:
    """Nothing listens there any more: its replica was killed without cleaning up."""
    if time.time() - path.stat().st_mtime < DEAD_SOCKET_MIN_AGE_SECONDS:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def remove_dead_sockets() -> list[Path]:
    """Removes the dead sockets (uWSGI's and its stats server's) of sibling replicas, so the gateway stops routing
    to them, and their names; returns them."""
    removed = []
    own = own_socket_path()
    for path in [*SOCKET_DIR.glob("*.sock"), *SOCKET_DIR.glob("*.stats")]:
        if path.stem == own.stem:
            continue
        try:
            if is_dead(path):
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another replica removed it first
            continue
    for name in SOCKET_DIR.glob("*.name"):  # a name outlives its socket only when its replica died
        if name.stem != own.stem and not name.with_suffix(".sock").exists():
            name.unlink(missing_ok=True)
            removed.append(name)
    return removed


if __name__ == "__main__":
    print(listen_address())
    if TRANSPORT != "tcp":
        publish_container_name()
