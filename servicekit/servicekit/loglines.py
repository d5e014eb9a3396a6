"""Every line a container writes is one JSON object (README "Logs"): passes JSON lines through as they are and
makes every other line (uWSGI's banner, a traceback, what a command prints) one, with the stack's timestamp.

    uwsgi ... 2>&1 | python -m servicekit.loglines      (servicekit/entrypoint.sh wraps a replica's output so)
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

from servicekit.logs import iso_utc


def as_json_line(line: bytes, stamp: dict[str, str]) -> bytes:
    if line.startswith(b"{"):
        return line if line.endswith(b"\n") else line + b"\n"
    message = line.decode("utf-8", errors="replace").rstrip("\n")
    return json.dumps({"time": iso_utc(time.time()), "level": "INFO", **stamp, "message": message}).encode() + b"\n"


def main() -> None:
    service = os.environ.get("SERVICE_NAME") or Path.cwd().name  # a service's folder is its working directory
    stamp = {"logger": "output", "service": service, "instance": socket.gethostname()}
    output = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if line.strip():
            output.write(as_json_line(line, stamp))
            output.flush()


if __name__ == "__main__":
    main()
