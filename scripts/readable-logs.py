"""The stack's JSON log lines as lines to read (`make logs SERVICE=service2`): time, level, who, what.

    docker compose logs --follow --no-log-prefix | python3 scripts/readable-logs.py

A request reads as `GET /api/service2/products 200 3.1 ms`, with its request id; any other line as its message
and its extra fields. A line that is not JSON is printed as it is, less the terminal controls Compose puts in its
own (`\r\x1b[Kservice2-1 exited with code 0`, even with --no-color). The host's own Python: no venv needed.
"""

import json
import re
import sys

TERMINAL_CONTROLS = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")

# Fields every line has, shown in the line's head, not repeated after its message.
HEAD = {"time", "level", "logger", "service", "instance", "message", "request_id", "taskName"}


def readable(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return TERMINAL_CONTROLS.sub("", line).rstrip("\n")
    if not isinstance(record, dict):
        return line.rstrip("\n")
    if "ts" in record and "time" not in record:  # Prometheus's own JSON (the metrics profile)
        record = {"time": record.pop("ts"), "level": str(record.pop("level", "info")).upper(),
                  "service": "prometheus", "message": record.pop("msg", ""), **record}  # fmt: skip
    time = str(record.get("time", ""))[11:23]  # 21:03:24.092 of 2026-11-28T21:03:24.092Z
    who = "/".join(str(record[key]) for key in ("service", "instance") if record.get(key))
    head = f"{time} {record.get('level', 'INFO'):<7} {who:<24}"
    if "method" in record and "status" in record:  # a request: the gateway's line or a service's
        took = f"{record['duration_ms']} ms" if "duration_ms" in record else f"{record.get('duration_s', '?')} s"
        what = f"{record['method']} {record.get('path', '')} {record['status']} {took}"
    else:
        extra = " ".join(f"{key}={value}" for key, value in record.items() if key not in HEAD)
        what = f"{record.get('message', '')} {extra}".rstrip()
    request_id = record.get("request_id")
    return f"{head} {what}" + (f"  [{request_id}]" if request_id else "")


def main() -> None:
    try:
        for line in sys.stdin:
            print(readable(line), flush=True)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
