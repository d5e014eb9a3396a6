"""Checks that the locks say what their sources ask for (`make lint`): every pin in servicekit's pyproject.toml,
each service's and the status page's requirements.txt, the development requirements, the tools' and the bench
image's is in its lock, at that version, with hashes.

It reads files only (no network): `make lock` rewrites the locks; this says when they are out of date.
"""

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
IMAGE_LOCK = ROOT / "servicekit" / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
TOOLS_LOCK = ROOT / "scripts" / "requirements.lock"
BENCH_LOCK = ROOT / "servicekit" / "bench-requirements.lock"


def locked(lock: Path) -> dict[str, str]:
    """name -> version of every requirement in a lock, each of which must carry a hash."""
    text = lock.read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}\s*\\?\n?)+)", text, re.M)
    return {canonicalize_name(name): version for name, version, _ in entries}


def pins_in_requirements(path: Path) -> list[str]:
    """The requirement lines of a requirements file, following its -r includes."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins += pins_in_requirements(path.parent / line[3:].strip())
        elif line:
            pins.append(line)
    return pins


def pins_of_servicekit(*extras: str) -> list[str]:
    project = tomllib.loads((ROOT / "servicekit" / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *(pin for extra in extras for pin in project["optional-dependencies"][extra])]


def problems(lock: Path, pins: list[str]) -> list[str]:
    versions = locked(lock)
    found = []
    for pin in pins:
        requirement = Requirement(pin)
        name = canonicalize_name(requirement.name)
        if name not in versions:
            found.append(f"{lock.name}: {requirement.name} is not locked (with hashes)")
        elif not requirement.specifier.contains(versions[name], prereleases=True):
            found.append(f"{lock.name}: {requirement.name} is locked at {versions[name]}, asked for {pin}")
    return found


def main() -> int:
    services = sorted(ROOT.glob("*/config/settings.py"))
    service_pins = [pin for path in services for pin in pins_in_requirements(path.parent.parent / "requirements.txt")]
    service_pins += pins_in_requirements(ROOT / "status" / "requirements.txt")
    build_pins = pins_in_requirements(ROOT / "servicekit" / "build-requirements.txt")
    found = problems(IMAGE_LOCK, [*pins_of_servicekit("server", "postgres"), *service_pins, *build_pins])
    dev_pins = pins_in_requirements(ROOT / "requirements-dev.txt")
    found += problems(DEV_LOCK, [*pins_of_servicekit("postgres"), *service_pins, *dev_pins])
    tools_pins = pins_in_requirements(ROOT / "scripts" / "requirements.txt")
    found += problems(TOOLS_LOCK, tools_pins)
    found += problems(DEV_LOCK, tools_pins)  # the tests run the tools from the development environment
    found += problems(BENCH_LOCK, pins_in_requirements(ROOT / "servicekit" / "bench-requirements.txt"))
    for problem in found:
        print(f"check-locks: {problem}; run `make lock`", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
