"""The README and docs/ as a reader meets them: a short README that reaches scaling early, its first answer as a
service gives it, every link resolving (to a file of this tree, or to a heading of the page it names), and a
configuration table that says what .env.example sets, variable for variable and default for default."""

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

from preflight import worker_defaults
from project import ACCOUNTS, ROOT, SERVICES

README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
CONFIGURATION = ROOT / "docs" / "operations.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose_lines(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchor_of(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces made hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor_of(line.lstrip("#")) for line in prose_lines(page) if re.match(r"#{1,6} ", line)}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in (link for line in prose_lines(page) for link in LINK.findall(line)):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        missing = not linked.is_relative_to(root) or not linked.exists()
        if missing or (anchor and (linked.suffix != ".md" or anchor not in anchors(linked))):
            broken.append(target)
    return broken


def test_the_readme_is_short_and_reaches_scaling_one_service_within_its_first_100_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    assert "## Scale one service" in lines[:100]


def readme_first_answer() -> tuple[list[str], dict]:
    """The answer README.md shows to its first request: its header names, and its body."""
    block = README.read_text().split("The answer:", 1)[1].split("```", 2)[1]
    head, _, body = block.strip().partition("\n\n")
    return [line.split(":", 1)[0] for line in head.splitlines()[1:]], json.loads(body)


def shape(value):
    """A JSON value's keys, at every level, and the type of each leaf: what a reader may rely on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__


def test_the_readmes_first_answer_is_what_the_service_answers(stack):
    """On main the sample lacked request_timeout_seconds: the health answer had gained it."""
    headers, body = readme_first_answer()
    response = stack.get(f"/api/{ACCOUNTS}/health")
    assert [name for name in headers if name not in response.headers] == []
    assert shape(body) == shape(response.json())
    assert body["service"] == ACCOUNTS and body["checks"] == response.json()["checks"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_resolves(page):
    assert broken_links(page) == []


def test_a_link_to_a_missing_file_or_heading_is_found_broken(tmp_path):
    """The check itself can fail: it sees a missing file, a missing heading, and a link out of the tree."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Title\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Here\n\n[ok](#here) [file](../README.md#title) [gone](gone.md) [no heading](../README.md#nowhere) "
        "[out](../../x)\n\n```\n[in code](not-a-link.md)\n```\n"
    )
    assert broken_links(page, root=tmp_path) == ["gone.md", "../README.md#nowhere", "../../x"]


def documented_settings() -> dict[str, str | None]:
    """The configuration table: each variable with its default as the table gives it (a value, or empty), or None
    where it says it in words. SERVICEn_ stands for each service's."""
    section = CONFIGURATION.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    settings: dict[str, str | None] = {}
    for row in re.findall(r"^\| (`.+?) \| (.+?) \|", section, re.MULTILINE):
        names = re.findall(r"`([A-Za-z0-9_]+)`", row[0])
        defaults = [cell.strip() for cell in row[1].split(", ")]
        if len(defaults) != len(names):
            defaults = [defaults[0]] * len(names)  # one default for several
        for name, default in zip(names, defaults, strict=True):
            if default.startswith("`") and default.endswith("`"):
                value: str | None = default.strip("`")
            elif default in ("none", "empty") or default.startswith("empty"):
                value = ""
            else:
                value = None
            for expanded in [name.replace("SERVICEn", service.upper()) for service in SERVICES] if "SERVICEn" in name \
                    else [name]:  # fmt: skip
                settings[expanded] = value
    return settings


def example_settings() -> dict[str, str | None]:
    """.env.example: each variable with its value, or None for one shown commented out."""
    settings: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            settings[match[1]] = match[2]
        elif match := re.fullmatch(r"#([A-Z][A-Z0-9_]*)=.*", line):
            settings.setdefault(match[1], None)
    return settings


def test_the_configuration_table_names_every_variable_of_env_example_with_its_default():
    documented, example = documented_settings(), example_settings()
    assert sorted(documented) == sorted(example)
    disagreeing = {
        name: (value, example[name])
        for name, value in documented.items()
        if value is not None and example[name] is not None and value != example[name]
    }
    assert disagreeing == {}


WORKER_DEFAULT = re.compile(r"_(PROCESSES|THREADS):-\d|^SERVICE\d_(PROCESSES|THREADS)=\d", re.MULTILINE)


def test_the_workers_defaults_are_written_in_uwsgi_ini_alone():
    """The files that pass a service's workers leave them empty by default, so the image's uwsgi.ini decides
    (servicekit/entrypoint.sh adds a service's own as options after it)."""
    passing = [ROOT / ".env.example", *ROOT.glob("docker-compose*.yml"), ROOT / "swarm" / "docker-stack.yml"]
    passing.append(ROOT / "docs" / "architecture.md")  # "Add a service" copies a service's block
    written = {path.name: WORKER_DEFAULT.findall(path.read_text()) for path in passing}
    assert {name: found for name, found in written.items() if found} == {}
    assert worker_defaults().keys() == {"PROCESSES", "THREADS"}
    assert WORKER_DEFAULT.search("UWSGI_PROCESSES: ${SERVICE5_PROCESSES:-2}")  # what it looks for


# The walk of one order in docs/architecture.md: a row names a file and a function (Class.method) in it, or a line
# of a file that is not Python. What a learner reads to follow it stays within these.
WALK_ROW = re.compile(r"^\| \d+ \| `([^`]+)` \| `([^`]+)` \|", re.MULTILINE)
WALK_FILES, WALK_LINES = 20, 1500


def walk_steps(page: Path = ARCHITECTURE) -> list[tuple[str, str]]:
    section = page.read_text().split("\n## One order, end to end\n", 1)[1].split("\n## ", 1)[0]
    return WALK_ROW.findall(section)


def definition(path: Path, name: str) -> ast.FunctionDef | ast.ClassDef | None:
    """The module's function or class of that name, or a class's method (Class.method)."""
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    found = None
    for part in name.split("."):
        kinds = (ast.FunctionDef, ast.ClassDef)
        found = next((node for node in scope if isinstance(node, kinds) and node.name == part), None)
        if found is None:
            return None
        scope = found.body
    return found


def lines_to_read(root: Path, path: str, name: str) -> int | None:
    """The lines a reader of that step reads: the definition with its decorators, or a whole non-Python file
    (short: nginx's and uWSGI's); None if the file or what the step names is not there."""
    file = root / path
    if not file.is_file():
        return None
    if file.suffix != ".py":
        text = file.read_text()
        return len(text.splitlines()) if name in text else None
    node = definition(file, name)
    if node is None or node.end_lineno is None:
        return None
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    return node.end_lineno - first + 1


def walk_size(steps: list[tuple[str, str]], root: Path = ROOT) -> tuple[list[str], int, int]:
    """Steps naming nothing that exists; the files and the lines (each file's or definition's once) to read."""
    missing = [f"{path} {name}" for path, name in steps if lines_to_read(root, path, name) is None]
    files = {path for path, _ in steps}
    read: dict[tuple[str, str], int] = {}
    for path, name in steps:
        key = (path, "") if not path.endswith(".py") else (path, name)
        read[key] = max(read.get(key, 0), lines_to_read(root, path, name) or 0)
    return missing, len(files), sum(read.values())


def test_the_walk_of_one_order_names_only_what_exists_and_stays_short():
    steps = walk_steps()
    missing, files, lines = walk_size(steps)
    assert len(steps) >= 20 and missing == [], missing
    assert files <= WALK_FILES and lines <= WALK_LINES, (files, lines)


def test_a_walk_step_naming_a_missing_file_function_or_line_is_found(tmp_path):
    code = "class Kept:\n    def method(self):\n        pass\n\n\n@decorated\ndef two():\n    pass\n"
    (tmp_path / "code.py").write_text(code)
    (tmp_path / "nginx.conf").write_text("location / {\n}\n")
    steps = [("code.py", "Kept.method"), ("code.py", "two"), ("nginx.conf", "location /"), ("code.py", "Kept.gone"),
             ("code.py", "gone"), ("gone.py", "two"), ("nginx.conf", "uwsgi_pass")]  # fmt: skip
    assert walk_size(steps, root=tmp_path) == (["code.py Kept.gone", "code.py gone", "gone.py two",
                                                 "nginx.conf uwsgi_pass"], 3, 2 + 3 + 2)  # fmt: skip


# What the docs name in backticks: a make target, a path of this tree (from its root, or from a service's folder:
# `orders/outbox.py`), a test.
MAKE_TARGET = re.compile(r"`make ([a-z][a-z0-9-]*)")
TREE_PATH = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/[A-Za-z0-9_-]+\.[a-z]+)`")
TEST_NAME = re.compile(r"`(test_[a-z0-9_]+)`")


def tracked_files(root: Path = ROOT) -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True)
    return listed.stdout.splitlines()


def unknown_names(pages: list[Path], makefile: str, files: list[str], code: str) -> list[str]:
    """What the pages name that is not there: a make target the Makefile lacks, a path no file has, a test that
    no code defines."""
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE))
    unknown = []
    for page in pages:
        text = page.read_text()
        unknown += [f"{page.name}: make {name}" for name in MAKE_TARGET.findall(text) if name not in targets]
        unknown += [f"{page.name}: {path}" for path in TREE_PATH.findall(text)
                    if not any(file == path or file.endswith("/" + path) for file in files)]  # fmt: skip
        unknown += [f"{page.name}: {name}" for name in TEST_NAME.findall(text) if f"def {name}(" not in code]
    return unknown


def test_every_make_target_path_and_test_the_docs_name_is_there():
    files = tracked_files()
    code = "\n".join((ROOT / file).read_text() for file in files if file.endswith(".py") and (ROOT / file).is_file())
    assert unknown_names(PAGES, (ROOT / "Makefile").read_text(), files, code) == []


def test_a_make_target_path_or_test_the_docs_name_that_is_not_there_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("`make up` `make gone` `service3/orders/outbox.py` `orders/outbox.py` `orders/gone.py` "
                    "`test_kept` `test_gone`")  # fmt: skip
    files = ["service3/orders/outbox.py", "tests/test_kept.py"]
    found = unknown_names([page], "up:\n\tdocker compose up\n", files, "def test_kept():\n    pass\n")
    assert found == ["page.md: make gone", "page.md: orders/gone.py", "page.md: test_gone"]


# Where the code reads a setting with its default: django-environ's env.<type>("NAME", default=...) and
# os.environ.get("NAME", ...), in the services' and the status page's settings.
CODE_DEFAULT = re.compile(r'(?:env(?:\.\w+)?|os\.environ\.get)\(\s*"([A-Z0-9_]+)"\s*,\s*(?:default=)?([^)\n]+)\)')
SETTINGS_CODE = ["servicekit/servicekit/settings.py", "service*/config/settings.py", "status/statuspage/*.py"]


def constant(expression: str) -> object:
    """The value of a default written as a constant or arithmetic on constants (15 * 60); None otherwise."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, ast.Expression | ast.Constant | ast.BinOp | ast.UnaryOp | ast.operator
                          | ast.unaryop) for node in ast.walk(tree)):  # fmt: skip
        return None
    return eval(compile(tree, "<default>", "eval"), {"__builtins__": {}})  # noqa: S307 (constants only)


def same_default(documented: str, coded: object) -> bool:
    if isinstance(coded, bool):
        return documented == str(coded).lower()
    if isinstance(coded, int | float):
        try:
            return float(documented) == float(coded)
        except ValueError:
            return False
    return documented == str(coded).lower() or documented == str(coded)


def defaults_in_code(root: Path = ROOT) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {}
    for pattern in SETTINGS_CODE:
        for path in sorted(root.glob(pattern)):
            for name, expression in CODE_DEFAULT.findall(path.read_text()):
                found.setdefault(name, []).append(constant(expression))
    return found


def test_each_documented_default_is_the_one_the_code_falls_back_to():
    documented, coded = documented_settings(), defaults_in_code()
    compared = {name: (value, coded[name]) for name, value in documented.items() if value and name in coded}
    assert len(compared) >= 15, compared  # the check reaches the settings it is about
    wrong = {name: pair for name, pair in compared.items()
             if any(value is not None and not same_default(pair[0], value) for value in pair[1])}  # fmt: skip
    assert wrong == {}


def test_a_documented_default_the_code_does_not_fall_back_to_is_found():
    assert [same_default(documented, constant(code)) for documented, code in
            [("900", "15 * 60"), ("false", "False"), ("INFO", '"INFO"'), ("3", "3.0"), ("5", "3.0"), ("true", "False"),
             ("INFO", '"DEBUG"')]] == [True, True, True, True, False, False, False]  # fmt: skip
