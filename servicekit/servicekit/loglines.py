"""Every line a container writes is one JSON object (docs/operations.md "Running it"): passes JSON lines through as
they are and makes every other line (uWSGI's banner, a traceback, what a command prints) one, with the stack's
timestamp.

    uwsgi ... 2>&1 | python -m servicekit.loglines      (servicekit/entrypoint.sh wraps a replica's output so)

When a step the entrypoint runs fails (the migrations, uWSGI), it says so on a line of its own (FAILED); that
line becomes one ERROR record that also gives the last line the step printed: uWSGI and Python say why they
stopped there ("invalid cheaper value: must be lower than processes", an exception), at no level of their own.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

from servicekit.logs import iso_utc

FAILED = b"servicekit: failed: "


class LogLines:
    def __init__(self, stamp: dict[str, str]):
        self.stamp = stamp
        self.last_printed = ""

    def record(self, level: str, message: str) -> bytes:
        line = {"time": iso_utc(time.time()), "level": level, **self.stamp, "message": message}
        return json.dumps(line).encode() + b"\n"

    def as_json_line(self, line: bytes) -> bytes:
        if line.startswith(b"{"):
            return line if line.endswith(b"\n") else line + b"\n"
        message = line.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith(FAILED):
            step = message[len(FAILED) :]
            why = self.last_printed or "it printed nothing"
            self.last_printed = ""
            return self.record("ERROR", f"{step}: {why}")
        self.last_printed = message.strip()
        return self.record("INFO", message)


def main() -> None:
    service = os.environ.get("SERVICE_NAME") or Path.cwd().name  # a service's folder is its working directory
    lines = LogLines({"logger": "output", "service": service, "instance": socket.gethostname()})
    output = sys.stdout.buffer
    for line in sys.stdin.buffer:
        if line.strip():
            output.write(lines.as_json_line(line))
            output.flush()


if __name__ == "__main__":
    main()
