"""The autoscaling drill (`make drill-autoscale`): a step load of logins that one replica of one worker cannot serve,
and `make autoscale SERVICE=service1 MIN=1 MAX=4` with its default policy, on a stack of its own.

Accounts runs one replica of one worker of one thread; the metrics profile runs Prometheus. After a quiet minute, a
closed loop of clients logs in as fast as it is answered (logins are CPU-bound: about 160 ms of CPU each), for a
fixed time; then the load ends. The drill reports when the autoscaler added each replica, the logins' p99 before and
after, where it stopped adding and why, how long it took to come back to MIN once the load had ended, and every
failed login. It draws the run from Prometheus's own data: logins served a second, replicas, and p99 over time.
A drill, not a test: it asserts nothing. It writes docs/autoscale.md and docs/autoscale.png (--out).
"""

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

# Run as a program: the tools' shared module (scripts/) and the suite's harness (tests/support/).
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / folder) for folder in ("scripts", "tests/support")]

from project import ACCOUNTS, ROOT
from reports import report_preamble
from stack import AUTOSCALED_ACCOUNTS, Autoscaler, Logins, Stack, tree_copy

MINIMUM, MAXIMUM = 1, 4
CLIENTS = 4  # logins in flight at once: one worker serves one, two replicas on 2 cores serve about two
QUIET_SECONDS, LOAD_SECONDS, RETURN_SECONDS = 60, 300, 420  # the last a bound: the policy's quiet is 90 s a step
# What the figures are over: the first logins of the load (one replica) and its last minute (all it added).
BEFORE_SECONDS, AFTER_SECONDS = 30, 60
SETTLE_SECONDS = 10
SERVED = f'service:microstack_uwsgi_requests:rate30s{{service="{ACCOUNTS}"}}'
REPLICAS = f'microstack_replicas{{service="{ACCOUNTS}"}}'
P99 = f'service:microstack_gateway_response_duration_seconds:p99_1m{{service="{ACCOUNTS}"}}'


def took(answers: list[tuple[float, float, int | str]], start: float, end: float) -> list[float]:
    """How long each login sent between start and end took, in seconds."""
    return [seconds for sent, seconds, _ in answers if start <= sent < end]


def p99_ms(seconds: list[float]) -> float | None:
    return statistics.quantiles(seconds, n=100)[98] * 1000 if len(seconds) >= 2 else None


def said(decision: str) -> str:
    """What the autoscaler said of the service: "1 -> 2 replicas: ..." of "autoscale: 18:14:01 service1: 1 -> 2 ..."."""
    return decision.split(f"{ACCOUNTS}: ", 1)[1]


def stretches(autoscaler: Autoscaler, step: float, end_of_load: float) -> list[tuple[int, float, float]]:
    """(replicas, from, to): while the load lasted, each stretch at one count of replicas, from SETTLE_SECONDS
    after the last of them was serving (a new replica's first requests, and the one it replaced, left out)."""
    changes = [(step, MINIMUM)] + [
        (at, int(said(line).split(" ", 1)[0]))
        for at, line in autoscaler.lines
        if "replica(s) serving" in line and step < at < end_of_load
    ]
    bounds = [*(at for at, _ in changes[1:]), end_of_load]
    return [(replicas, at + SETTLE_SECONDS, until) for (at, replicas), until in zip(changes, bounds, strict=True)
            if until - at > SETTLE_SECONDS]  # fmt: skip


def series(stack: Stack, query: str, start: float, end: float) -> list[tuple[float, float]]:
    """Prometheus's values of a query over the run, every 5 s (one series: the query names one service)."""
    parameters = {"query": query, "start": f"{start:.0f}", "end": f"{end:.0f}", "step": "5"}
    response = requests.get(f"http://127.0.0.1:{stack.prometheus_port}/api/v1/query_range", params=parameters,
                            timeout=30)  # fmt: skip
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return [(float(at), float(value)) for at, value in result[0]["values"]] if result else []


def draw(path: Path, stack: Stack, start: float, step: float, end_of_load: float, end: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels = [("logins served / s", SERVED, 1), ("replicas", REPLICAS, 1), ("p99, ms", P99, 1000)]
    figure, axes = pyplot.subplots(len(panels), 1, sharex=True, figsize=(9, 7))
    for axis, (label, query, scale) in zip(axes, panels, strict=True):
        points = series(stack, query, start, end)
        axis.plot([at - start for at, _ in points], [value * scale for _, value in points], drawstyle="steps-post")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)  # a change in proportion to the whole, not a zoom on a wiggle
        for moment in (step, end_of_load):
            axis.axvline(moment - start, color="grey", linestyle="--", linewidth=1)
        axis.grid(alpha=0.3)
    axes[0].set_title(f"make autoscale SERVICE={ACCOUNTS} MIN={MINIMUM} MAX={MAXIMUM}: {CLIENTS} clients logging in "
                      "between the dashed lines (Prometheus's data)", fontsize=9)  # fmt: skip
    axes[-1].set_xlabel("seconds into the drill")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def stretch_row(load: Logins, replicas: int, start: float, end: float) -> str:
    seconds = took(load.answers, start, end)
    p99 = p99_ms(seconds)
    if p99 is None:
        return f"| {replicas} | {end - start:.0f} s | - | - | - |"
    p50 = statistics.median(seconds) * 1000
    return f"| {replicas} | {end - start:.0f} s | {len(seconds) / (end - start):.1f} | {p50:.0f} | {p99:.0f} |"


def change_of(decision: str) -> str:
    """1 -> 2, of the autoscaler's line "autoscale: 18:14:01 service1: 1 -> 2 replicas: saturated for ..."."""
    return said(decision).split(" replicas")[0]


def after(at: float | None, since: float) -> str:
    return f"{at - since:.0f} s" if at is not None else "never"


def drill(out: Path) -> None:
    directory = Path(tempfile.mkdtemp(prefix="microstack-autoscale-drill-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    project = f"microstack-autoscale-drill-{uuid.uuid4().hex[:8]}"
    stack = Stack(project, AUTOSCALED_ACCOUNTS, root=tree_copy(directory / "tree"))
    stack.up()
    try:
        credentials = {"username": f"drill-{uuid.uuid4().hex[:8]}", "password": uuid.uuid4().hex}
        assert stack.post(f"/api/{ACCOUNTS}/register", credentials).status_code == 201
        autoscaler = Autoscaler(stack, MINIMUM, MAXIMUM, echo=True)
        try:
            start = time.time()
            time.sleep(QUIET_SECONDS)  # the figures at rest, in the plot
            step = time.time()
            with Logins(stack, credentials, clients=CLIENTS, max_seconds=LOAD_SECONDS) as load:
                load.threads[0].join()  # each stops at its max_seconds
            end_of_load = time.time()
            deadline = time.monotonic() + RETURN_SECONDS
            while time.monotonic() < deadline and not autoscaler.first(f"{MINIMUM} replica(s) serving", end_of_load):
                time.sleep(1)
            time.sleep(10)  # the last samples, in the plot
            end = time.time()
        finally:
            autoscaler.stop()
        report(out, stack, autoscaler, load, start, step, end_of_load, end)
    finally:
        stack.down()


def report(out: Path, stack: Stack, autoscaler: Autoscaler, load: Logins, start: float, step: float,
           end_of_load: float, end: float) -> None:  # fmt: skip
    added = [(at, line) for at, line in autoscaler.lines if "replicas: saturated" in line]
    stopped = next(
        (line for _, line in reversed(autoscaler.lines) if "did not help" in line or "held at" in line), None
    )
    back = autoscaler.first(f"{MINIMUM} replica(s) serving", end_of_load)
    failed = sum(count for outcome, count in load.outcomes.items() if outcome != 200)
    last_added = added[-1][0] if added else step
    before = p99_ms(took(load.answers, step, step + BEFORE_SECONDS))
    settled = p99_ms(took(load.answers, max(last_added, end_of_load - AFTER_SECONDS), end_of_load))
    lines = report_preamble("The autoscaling drill", "make drill-autoscale")
    lines += [
        f"Accounts: one replica of one worker of one thread at first. After {QUIET_SECONDS} s at rest, {CLIENTS} "
        f"clients log in as fast as they are answered for {LOAD_SECONDS} s (a closed loop: a step of load that one "
        f"replica cannot serve), while `make autoscale SERVICE={ACCOUNTS} MIN={MINIMUM} MAX={MAXIMUM}` runs with its "
        "default policy (out after 30 s above 0.8 saturation, in after 90 s below 0.3, each added replica judged 35 s "
        "later). The p99 is the clients' own, over the load's first "
        f"{BEFORE_SECONDS} s and over its last {AFTER_SECONDS} s (after the last replica it added).",
        "",
        "| time to scale out (1 → 2) | replicas added, and when | p99 before | p99 after | where it stopped, and why "
        "| back to MIN after the load | logins | failed |",
        "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |",
        "| "
        + " | ".join(
            [
                after(added[0][0] if added else None, step),
                ", ".join(f"{change_of(line)} at {at - step:.0f} s" for at, line in added) or "none",
                f"{before:.0f} ms" if before is not None else "-",
                f"{settled:.0f} ms" if settled is not None else "-",
                (said(stopped) if stopped else "at MAX or never saturated").replace("|", "/"),
                after(back[0] if back else None, end_of_load),
                str(sum(load.outcomes.values())),
                str(failed),
            ]
        )
        + " |",  # fmt: skip
        "",
        "What the clients got at each count of replicas while the load lasted (from "
        f"{SETTLE_SECONDS} s after the last of them was serving):",
        "",
        "| replicas | for | logins / s | p50 ms | p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(stretch_row(load, *stretch) for stretch in stretches(autoscaler, step, end_of_load)),
        "",
        "Prometheus's p99 (the plot) is interpolated within its histogram's buckets (0.5 s, 1 s, 2.5 s here): "
        "between two bounds it shows the trend, not the figure; the clients' p99 above are exact.",
        "",
        "The autoscaler's decisions, as it said them:",
        "",
        "```",
        *(f"{at - start:6.0f} s  {line}" for at, line in autoscaler.lines),
        "```",
        "",
        "![Logins served, replicas and p99 over the drill](autoscale.png) (dashed: the load's start at "
        f"{step - start:.0f} s and end at {end_of_load - start:.0f} s)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "autoscale.md").write_text("\n".join(lines))
    draw(out / "autoscale.png", stack, start, step, end_of_load, end)
    print("\n".join(lines))
    print(f"wrote {out / 'autoscale.md'} and {out / 'autoscale.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where autoscale.md and .png go (docs/)")
    drill(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
