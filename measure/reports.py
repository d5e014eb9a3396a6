"""What every report the measurement tools write into docs/ starts with."""

import os
import platform
import subprocess
from datetime import UTC, datetime

from project import ROOT


def report_preamble(title: str, tool: str) -> list[str]:
    """The first lines of a report a tool writes into docs/: what wrote it, from which commit, when, on what."""
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"# {title}",
        "",
        f"Written by `{tool}` ({commit.stdout.strip() or 'no commit'}, {when}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}). Every figure below was measured in that one run.",
        "",
    ]
