"""Docker healthcheck: GET the service's health through its uWSGI socket, the same path nginx takes.

Speaks the uwsgi protocol (a 4-byte header and length-prefixed variables); exits 0 on a 200 answer. A healthy
replica also removes the sockets that killed sibling replicas left behind.

The engine starts it in every container every 2 s (Docker before 25): it imports as little as it can (no
argparse, no re), so a check costs the machine a Python start-up and a request, not a library's imports.

    python -m servicekit.healthcheck [--path /api/<service>/health] [--timeout 2]
"""

import os
import socket
import struct
import sys
from collections.abc import Callable

from servicekit import sockets


def encode_uwsgi_request(variables: dict[str, str]) -> bytes:
    body = b""
    for name, value in variables.items():
        for item in (name.encode(), value.encode()):
            body += struct.pack("<H", len(item)) + item
    # modifier1 0 means a WSGI request; modifier2 is unused.
    return struct.pack("<BHB", 0, len(body), 0) + body


# The access log leaves out requests that carry this uwsgi variable: a check every few seconds would fill it.
HEALTHCHECK_VARIABLE = "SERVICEKIT_HEALTHCHECK"
# The uWSGI metric that counts them (servicekit/uwsgi.ini declares it; the status page reads it).
HEALTHCHECKS_METRIC = "healthchecks"


def request_status(connect: Callable[[], socket.socket], path: str) -> int:
    variables = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "HTTP_USER_AGENT": "servicekit-healthcheck",
        # Not a header: only what speaks to the socket can set it (nginx passes none such), so no client can
        # keep its requests out of the access log this way.
        HEALTHCHECK_VARIABLE: "1",
    }
    with connect() as connection:
        connection.sendall(encode_uwsgi_request(variables))
        status_line = connection.makefile("rb").readline().decode("latin-1")
    # "HTTP/1.1 200 OK"
    return int(status_line.split()[1])


def options(argv: list[str]) -> dict[str, str]:
    """--path and --timeout, each followed by its value; anything else is a usage error (exit 2)."""
    found = {"--path": f"/api/{os.path.basename(os.getcwd())}/health", "--timeout": "2"}
    if len(argv) % 2 or any(name not in found for name in argv[::2]):
        print(__doc__.rstrip().splitlines()[-1].strip(), file=sys.stderr)
        raise SystemExit(2)
    found.update(zip(argv[::2], argv[1::2], strict=True))
    return found


def main() -> int:
    chosen = options(sys.argv[1:])
    path, timeout = chosen["--path"], float(chosen["--timeout"])
    try:
        status = request_status(lambda: sockets.connect(timeout), path)
    except (OSError, ValueError, IndexError) as error:
        print(f"unhealthy: {sockets.listen_address()}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {path} answered {status}", file=sys.stderr)
        return 1
    if sockets.TRANSPORT == "unix":
        for path in sockets.remove_dead_sockets():
            print(f"removed the dead socket {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
