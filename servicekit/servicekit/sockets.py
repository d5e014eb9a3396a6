"""Where a replica's uWSGI listens, and clearing the sockets dead replicas left behind.

Unix transport (the default): a socket named by the container's hostname in the service's socket volume, which
all replicas of the service share with the gateway; the gateway routes to every socket it finds there.
TCP transport (for several hosts): a port, found by the gateway through Docker's DNS.

Paths are strings and os.path, not pathlib: the healthcheck imports this module every 2 s, and pathlib imports
re and fnmatch.
"""

import os
import socket
import time

SOCKET_DIR = os.environ.get("SOCKET_DIR", "/run/uwsgi")
TRANSPORT = os.environ.get("SERVICE_TRANSPORT", "unix")
TCP_PORT = int(os.environ.get("SERVICE_TCP_PORT", "3031"))
# A socket younger than this may belong to a replica still starting; it is never judged dead.
DEAD_SOCKET_MIN_AGE_SECONDS = 10


def own_socket_path() -> str:
    return os.path.join(SOCKET_DIR, f"{socket.gethostname()}.sock")


def publish_container_name() -> None:
    """Writes, beside this replica's socket, the name people know it by (`docker compose ps`, `make scale`): the
    name Docker's DNS gives its address. The hostname the socket is named by is only the container's id."""
    import subprocess  # nosec B404 (here, not at the top: the healthcheck imports this module every 2 s)

    try:
        address = socket.gethostbyname(socket.gethostname())
        # getent from the image's libc, asked for an address this container has: no input from outside.
        lookup = ["/usr/bin/getent", "-s", "dns", "hosts", address]
        name = subprocess.run(lookup, capture_output=True, text=True, timeout=2).stdout.split()[1]  # nosec B603
    except (OSError, IndexError, subprocess.SubprocessError):
        return  # no DNS name (a plain `docker run`): the page shows the hostname alone
    with open(own_socket_path().removesuffix(".sock") + ".name", "w") as published:
        published.write(name.split(".")[0] + "\n")


def listen_address() -> str:
    """The value of uWSGI's `socket` option for this replica."""
    if TRANSPORT == "tcp":
        return f"0.0.0.0:{TCP_PORT}"
    return own_socket_path()


def connect(timeout: float) -> socket.socket:
    """A connection to this replica's own uWSGI, over whichever transport it listens on."""
    if TRANSPORT == "tcp":
        return socket.create_connection(("127.0.0.1", TCP_PORT), timeout=timeout)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(own_socket_path())
    except OSError:
        connection.close()
        raise
    return connection


def is_dead(path: str) -> bool:
    """Nothing listens there any more: its replica was killed without cleaning up."""
    if time.time() - os.stat(path).st_mtime < DEAD_SOCKET_MIN_AGE_SECONDS:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def remove_dead_sockets() -> list[str]:
    """Removes the dead sockets (uWSGI's and its stats server's) of sibling replicas, so the gateway stops routing
    to them, and their names; returns them."""
    removed = []
    own = os.path.basename(own_socket_path()).removesuffix(".sock")
    files = sorted(os.listdir(SOCKET_DIR))
    for file in files:
        replica, extension = os.path.splitext(file)
        if extension not in (".sock", ".stats") or replica == own:
            continue
        path = os.path.join(SOCKET_DIR, file)
        try:
            if is_dead(path):
                os.unlink(path)
                removed.append(path)
        except FileNotFoundError:  # another replica removed it first
            continue
    for file in files:  # a name or draining mark outlives its socket only when its replica died
        replica, extension = os.path.splitext(file)
        path = os.path.join(SOCKET_DIR, file)
        orphaned = not os.path.exists(os.path.join(SOCKET_DIR, f"{replica}.sock"))
        if extension in (".name", ".draining") and replica != own and orphaned:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


if __name__ == "__main__":
    print(listen_address())
    if TRANSPORT != "tcp":
        publish_container_name()
