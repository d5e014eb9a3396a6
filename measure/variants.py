"""The same figures on each variant of the stack (`make variants`): SQLite and PostgreSQL with Compose, and Swarm.

For each, on its own copy of the stack: the time from nothing to every route answering, the requests and failures
of a steady load on the catalog while it rolls to a new image, and the time until a new replica of the accounts
service takes traffic after it is scaled to three. It prints figures and asserts nothing.
"""

import subprocess
import sys
import time
import uuid
from pathlib import Path

# Run as a program, from this tree or a copy of it: the tools' shared module (scripts/), the suite's
# harness (tests/support/), the Swarm and lab tools.
sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "tests/support", "swarm", "lab")
]

from project import ACCOUNTS, CATALOG, ROOT
from stack import Stack, SteadyLoad, timed
from swarm_stack import SwarmStack

SCALE_COMMANDS = "`docker compose up --scale` (Compose), `docker service scale` (Swarm)"


def rolling_update(stack: Stack) -> tuple[int, int, float]:
    """(requests, failures, seconds) of a steady load on the catalog while it rolls to a new image."""
    with SteadyLoad(stack, f"/api/{CATALOG}/products", max_seconds=300) as load:
        if isinstance(stack, SwarmStack):
            image = stack.derived_image(CATALOG, f'LABEL rolled="{time.time()}"')
            result, took = timed(lambda: stack.deploy(CATALOG, image))
        else:
            command = [sys.executable, str(ROOT / "scripts" / "deploy.py"), CATALOG, "--no-build"]
            command += ["--project", stack.project]
            run = lambda: subprocess.run(command, env=stack.compose_environment(), capture_output=True, text=True)  # noqa: E731
            result, took = timed(run)
    if result.returncode != 0:
        print(f"  the rolling update failed: {result.stderr.strip()}", file=sys.stderr)
    return load.sent, load.failed, took


def new_replica_takes_traffic(stack: Stack) -> float | None:
    """Seconds from asking for three replicas of the accounts service until a new one answers a request."""
    first = {stack.served_by(f"/api/{ACCOUNTS}/health/")}
    if isinstance(stack, SwarmStack):
        command = ["docker", "service", "scale", "--detach", f"{stack.service_name(ACCOUNTS)}=3"]
    else:
        scale = ["up", "--detach", "--no-recreate", "--scale", f"{ACCOUNTS}=3", ACCOUNTS]
        command = ["docker", "compose", "--project-name", stack.project, *scale]
    started = time.monotonic()
    environment = stack.compose_environment()
    scaling = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < 120:
            try:
                if stack.served_by(f"/api/{ACCOUNTS}/health/") not in first:
                    return time.monotonic() - started
            except Exception:  # a request lost while scaling is not this figure's concern
                pass
            time.sleep(0.02)
        return None
    finally:
        scaling.wait()


def measure(name: str, stack: Stack) -> str:
    print(f"{name}: starting its own copy of the stack", file=sys.stderr, flush=True)
    try:
        _, healthy_after = timed(stack.up)
        sent, failed, rolled_in = rolling_update(stack)
        new_replica = new_replica_takes_traffic(stack)
    finally:
        stack.down()
    replica = "not within 120 s" if new_replica is None else f"{new_replica:.1f} s"
    return f"| {name} | {healthy_after:.1f} s | {sent} | {failed} | {rolled_in:.1f} s | {replica} |"


def main() -> None:
    suffix = uuid.uuid4().hex[:8]
    rows = []
    for database in ("sqlite", "postgres"):
        project = f"microstack-variants-{database}-{suffix}"
        rows.append(measure(f"Compose, {database}", Stack(project, database=database)))
    rows.append(measure("Swarm, postgres", SwarmStack(f"microstack-variants-swarm-{suffix}")))
    header = "| variant | up to healthy | requests during the update | failed | update took | new replica serves |"
    print(header)
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print(f"\n(images built beforehand; scaling by {SCALE_COMMANDS})")


if __name__ == "__main__":
    main()
