"""The "Add a service" steps (docs/architecture.md), followed on a copy of this tree: service5 comes up, is routed,
and keeps the contract."""

import atexit
import functools
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from project import ROOT, SERVICES, run
from stack import Stack, variant_stack

NEW_SERVICE = "service5"


def documented_section(title: str) -> str:
    """The section of that title, in the README or whichever page of docs/ holds it, up to the next one."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    (text,) = [page.read_text() + "\n## " for page in pages if f"\n## {title}\n" in page.read_text()]
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def follow(section: str, tree: Path) -> None:
    """Does what each code block of the section says: runs the shell blocks, writes each Python block to the file
    its first line names, and puts each YAML block after the one line its first line names."""
    for language, body in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL):
        if language == "bash":
            run("bash", "-o", "errexit", "-o", "nounset", "-o", "pipefail", "-c", body, cwd=tree)
            continue
        first_line, text = body.split("\n", 1)
        if language == "python":
            (tree / first_line.removeprefix("# ")).write_text(text)
        elif language == "yaml":
            placement = re.fullmatch(r"# (\S+), after: (.+)", first_line)
            assert placement, f"a YAML block of the section must say where it goes: {first_line!r}"
            target, anchor = placement.groups()
            lines = (tree / target).read_text().splitlines(keepends=True)
            (at,) = [index for index, line in enumerate(lines) if line.strip() == anchor]
            lines.insert(at + 1, text)
            (tree / target).write_text("".join(lines))


def tracked_files(root: Path) -> set[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True)
    return {name for name in listed.stdout.split("\0") if name and (root / name).is_file()}


def all_files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@dataclass
class FollowedTree:
    path: Path
    added: list[str]
    changed: list[str]


FOLLOWING = threading.Lock()


@functools.cache
def followed_tree() -> FollowedTree:
    """A copy of this tree (its tracked files, and the user's .env) with the "Add a service" steps followed."""
    copy = Path(tempfile.mkdtemp(prefix="microstack-added-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)  # once its stack is down: the session's end
    for name in tracked_files(ROOT) | ({".env"} if (ROOT / ".env").exists() else set()):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    before = all_files(copy)
    follow(documented_section("Add a service"), copy)
    changed = [name for name in sorted(before) if differs(copy, name)]
    return FollowedTree(copy, sorted(all_files(copy) - before), changed)


@pytest.fixture(scope="module")
def tree() -> FollowedTree:
    with FOLLOWING:  # the variant's recipe may be following the steps in the background
        return followed_tree()


def differs(copy: Path, name: str) -> bool:
    return (ROOT / name).read_bytes() != (copy / name).read_bytes()


@variant_stack
def stack_with_new_service_variant(shared: Stack) -> Stack:  # after the shared stack, whose layers it reuses
    with FOLLOWING:
        followed = followed_tree()
    return Stack(f"microstack-test-added-{uuid.uuid4().hex[:8]}", root=followed.path)


@pytest.fixture(scope="module")
def stack_with_new_service(tree, stack_pool):
    yield from stack_pool.variant(stack_with_new_service_variant)


def test_the_steps_add_one_folder_and_change_one_file(tree):
    assert tree.added and all(name.startswith(f"{NEW_SERVICE}/") for name in tree.added), tree.added
    assert tree.changed == ["docker-compose.yml"]


def test_the_new_service_is_routed(stack_with_new_service):
    response = stack_with_new_service.get(f"/api/{NEW_SERVICE}/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.headers["X-Served-By"].startswith(f"{NEW_SERVICE}/")


def test_the_new_service_keeps_the_contract_over_http(stack_with_new_service):
    health = stack_with_new_service.get(f"/api/{NEW_SERVICE}/health/", headers={"X-Request-ID": "added-1"})
    assert health.status_code == 200
    assert (health.json()["service"], health.json()["checks"]) == (NEW_SERVICE, {"database": "ok"})
    assert health.headers["X-Request-ID"] == "added-1"
    missing = stack_with_new_service.get(f"/api/{NEW_SERVICE}/no-such-route/")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    internal = stack_with_new_service.get(f"/api/{NEW_SERVICE}/internal/anything")
    assert internal.status_code == 404


def test_the_other_services_still_answer(stack_with_new_service):
    for service in SERVICES:
        assert stack_with_new_service.get(f"/api/{service}/health/").json()["service"] == service


def test_the_new_service_passes_the_shared_contract_unit_tests(tree):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"],  # -rA: a line per passed test
        cwd=tree.path / NEW_SERVICE, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"^PASSED .*TestServiceContract::", result.stdout, re.MULTILINE), result.stdout[-3000:]
