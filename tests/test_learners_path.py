"""The wrong turns a newcomer took from clone to scaled service, each made a right one (README "Run it").

Most of these run the project's own commands (make, scripts/) as a newcomer would, on a project name of their
own, and check what they say and leave behind.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest

from newcomer import containers_of, labelled, make, newcomer_environment, remove_project
from preflight import BASE_IMAGE_ARGUMENTS
from project import (
    ACCOUNTS,
    CATALOG,
    GATEWAY,
    PROMETHEUS,
    ROOT,
    SERVICES,
    STATUS,
    engine_time,
    gateway_log_delay_seconds,
)
from stack import reserve_port, wait_until

DEPLOY = [sys.executable, str(ROOT / "scripts" / "deploy.py")]


# --- make -------------------------------------------------------------------------------------------------------


def test_bare_make_lists_every_target_the_docs_name_and_starts_nothing():
    """What `make` lists is what make can do (each a rule in its database), and every `make <target>` the README
    and docs/ tell a reader to run is among them."""
    environment = newcomer_environment()
    result = make(environment=environment)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    database = make("--question", "--print-data-base", environment=environment).stdout
    rules = set(re.findall(r"^([a-z][a-z-]*):", database, re.MULTILINE))
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    told = {target for page in pages for target in re.findall(r"(?:`|^)make ([a-z][a-z-]+)", page.read_text(), re.M)}
    assert {"up", "test", "test-all", "scale", "load", "logs"} <= listed <= rules
    assert told - listed == set()
    assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == ""


# --- make up: what it checks before starting anything -----------------------------------------------------------


def test_a_taken_port_fails_make_up_at_once_naming_the_port_and_the_setting():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        environment = newcomer_environment(GATEWAY_PORT=str(port))
        result = make("up", environment=environment)
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "GATEWAY_PORT" in result.stderr, result.stderr
    assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == "", "nothing may be left half up"


def test_a_base_image_that_cannot_be_had_points_to_make_base_images():
    environment = newcomer_environment(PYTHON_IMAGE=f"microstack-test-missing/python:{uuid.uuid4().hex[:8]}")
    result = make("up", environment=environment)
    assert result.returncode != 0
    assert environment["PYTHON_IMAGE"] in result.stderr and "make base-images" in result.stderr, result.stderr
    assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == ""


@pytest.mark.parametrize(
    ("settings", "named", "rule"),
    [
        ({"SERVICE1_PROCESSES": "2", "SERVICE1_CHEAPER": "2"}, "SERVICE1_CHEAPER=2", "lower than SERVICE1_PROCESSES=2"),
        ({"SERVICE2_THREADS": "0"}, "SERVICE2_THREADS=0", "1 or more"),
        ({"SERVICE3_PROCESSES": "two"}, "SERVICE3_PROCESSES=two", "a whole number"),
        ({"SERVICE4_REPLICAS": "0"}, "SERVICE4_REPLICAS=0", "1 or more"),
    ],
)
def test_a_worker_setting_that_cannot_run_fails_make_up_at_once_naming_it_and_the_rule(settings, named, rule):
    environment = newcomer_environment(**settings)
    result = make("up", environment=environment)
    assert result.returncode != 0
    assert named in result.stderr and rule in result.stderr, result.stderr
    assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == "", "nothing may start"


def test_when_a_service_cannot_start_make_up_says_which_and_why():
    """A setting the preflight does not know: each service refuses it at start-up, in its own words."""
    port, port_lock = reserve_port()
    environment = newcomer_environment(SERVICE_TOKEN_SECONDS="99", GATEWAY_PORT=str(port))
    try:
        result = make("up", environment=environment)
        assert result.returncode != 0
        # The images built in two lines (on main: about 300, and Compose's Bake warning where buildx is missing).
        assert "Bake" not in result.stdout + result.stderr
        assert re.search(r"^build: building the images \(docker compose build\)\nbuild: done in \d+ s$", result.stdout,
                         re.M), result.stdout  # fmt: skip
        project = environment["COMPOSE_PROJECT_NAME"]
        why = (
            "the migrations exited with status 1: django.core.exceptions.ImproperlyConfigured: SERVICE_TOKEN_SECONDS=99"
        )
        assert f"up: {project}-{ACCOUNTS}-1 is " in result.stderr and why in result.stderr, result.stderr
    finally:
        remove_project(environment)
        port_lock.close()


def build_argument(service: str, name: str) -> str:
    """A build argument of a service as Compose resolves it here (.env included)."""
    config = subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    return json.loads(config)["services"][service]["build"]["args"][name]


def test_a_build_that_fails_shows_the_builders_whole_log():
    """make up keeps the builder's output (hundreds of lines) out of sight unless the build fails."""
    # A base image that is there but cannot build a service (the gateway's has no Python): the build fails.
    port, port_lock = reserve_port()
    base = build_argument(GATEWAY, "NGINX_IMAGE")
    environment = newcomer_environment(PYTHON_IMAGE=base, GATEWAY_PORT=str(port))
    try:
        failed = make("up", environment=environment)
        assert failed.returncode != 0
        assert "python3" in failed.stderr and "build: failed after" in failed.stderr, failed.stderr
        assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == ""
    finally:
        remove_project(environment)
        port_lock.close()


def test_make_scale_refuses_a_setting_that_cannot_run_and_changes_nothing(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "var", "*_cache", ".env"))
    (tree / ".env").write_text("SERVICE1_CHEAPER=2\n")
    environment = newcomer_environment()
    environment.pop("SERVICE1_CHEAPER", None)
    scale = [sys.executable, str(tree / "scripts" / "scale.py"), "service1", "--processes", "2"]
    result = subprocess.run(scale, cwd=tree, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SERVICE1_CHEAPER=2" in result.stderr and "lower than SERVICE1_PROCESSES=2" in result.stderr, result.stderr
    assert (tree / ".env").read_text() == "SERVICE1_CHEAPER=2\n"
    assert containers_of(environment["COMPOSE_PROJECT_NAME"]) == ""


def test_make_down_stops_what_another_variant_started_and_v_deletes_every_volume_of_the_project():
    """`make up DB=postgres`, then `make down`: the databases are not in the default Compose files."""
    environment = newcomer_environment()
    project = environment["COMPOSE_PROJECT_NAME"]
    postgres = ["docker", "compose", "-f", "docker-compose.yml", "-f", "docker-compose.postgres.yml"]
    started = subprocess.run([*postgres, "up", "--detach", "--no-deps", "service1-db"], cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        assert containers_of(project) != ""
        result = make("down", "V=1", environment=environment)
        assert result.returncode == 0, result.stderr
        assert containers_of(project) == ""
        assert labelled("volume", project) == []
    finally:
        subprocess.run([*postgres, "down", "--volumes", "--rmi", "local"], cwd=ROOT, env=environment,
                       capture_output=True, timeout=120)  # fmt: skip


def test_make_base_images_names_them_in_env_for_every_later_shell(tmp_path):
    """After `make base-images`, a new shell (no exported *_IMAGE) builds from them: Compose reads .env."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "var", "*_cache", ".env"))
    (tree / ".env").write_text("# mine\nGATEWAY_PORT=8099\nPYTHON_IMAGE=python:3.13.9-slim-trixie\n")
    environment = newcomer_environment()
    for name in BASE_IMAGE_ARGUMENTS:
        environment.pop(name, None)
    built = subprocess.run(
        ["make", "--no-print-directory", "base-images"],
        cwd=tree,
        env={**environment, "CA_BUNDLE": os.environ.get("CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    written = dict(line.split("=", 1) for line in (tree / ".env").read_text().splitlines() if "=" in line)
    assert written["GATEWAY_PORT"] == "8099", "the user's own settings stay"
    assert (tree / ".env").read_text().startswith("# mine\n")
    images = {name: written[name] for name in BASE_IMAGE_ARGUMENTS}
    assert all(image.startswith("microstack-base/") for image in images.values()), images
    config = subprocess.run(
        ["docker", "compose", "config", "--format", "json"], cwd=tree, env=environment, capture_output=True, text=True
    )
    assert config.returncode == 0, config.stderr
    assert f'"PYTHON_IMAGE": "{images["PYTHON_IMAGE"]}"' in config.stdout.replace('":"', '": "')
    try:
        build = subprocess.run(
            ["docker", "compose", "build", GATEWAY], cwd=tree, env=environment, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert build.returncode == 0, build.stderr[-2000:]
    finally:
        remove_project(environment)  # the gateway's image it built


# --- deploy -----------------------------------------------------------------------------------------------------


def test_deploying_a_service_the_stack_does_not_have_says_so():
    result = subprocess.run([*DEPLOY, "service9"], env=newcomer_environment(), capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown service 'service9'" in result.stderr and "service1" in result.stderr, result.stderr


def test_reloading_the_gateway_of_a_stack_that_is_not_running_builds_nothing_first():
    result = subprocess.run([*DEPLOY, GATEWAY], env=newcomer_environment(), capture_output=True, text=True)
    assert result.returncode == 1
    assert "running gateway" in result.stderr, result.stderr
    assert "building" not in result.stdout


# --- the stack --------------------------------------------------------------------------------------------------


def test_what_make_unit_and_make_lint_leave_does_not_rebuild_an_image(stack):
    """Their caches are not in the build context (.dockerignore): the next `make up` rebuilds nothing."""
    left = []
    for name in (".pytest_cache", ".ruff_cache", ".mypy_cache", "__pycache__"):
        for folder in (ROOT, ROOT / CATALOG, ROOT / "servicekit" / "servicekit"):
            left.append(folder / name / f"left-by-a-test-{uuid.uuid4().hex[:6]}")
            left[-1].parent.mkdir(exist_ok=True)
            left[-1].write_text("x")
    try:
        built = stack.compose("--progress", "plain", "build", CATALOG)
    finally:
        for path in left:
            path.unlink()
    output = built.stdout + built.stderr
    steps = set(re.findall(r"^#(\d+) \[[^\]]+\] (?:COPY|RUN) ", output, re.MULTILINE))
    cached = set(re.findall(r"^#(\d+) CACHED$", output, re.MULTILINE))
    assert len(steps) >= 5, output[-3000:]
    assert steps <= cached, output[-3000:]


def test_a_short_wrong_password_is_a_401_like_any_wrong_one(stack):
    username = f"short-{uuid.uuid4().hex[:8]}"
    assert stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": "long enough"}).status_code == 201
    for password in ("short", "wrong but long enough"):
        response = stack.post(f"/api/{ACCOUNTS}/login", {"username": username, "password": password})
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_credentials"


def test_a_username_is_taken_whatever_its_case(stack):
    username = f"Case-{uuid.uuid4().hex[:8]}"
    assert stack.post(f"/api/{ACCOUNTS}/register", {"username": username, "password": "long enough"}).status_code == 201
    response = stack.post(f"/api/{ACCOUNTS}/register", {"username": username.lower(), "password": "long enough"})
    assert response.status_code == 409, response.text


def test_a_price_is_answered_as_stored_with_two_decimal_places(stack, staff_token):
    body = {"name": f"normalised-{uuid.uuid4().hex[:8]}", "price": "4.2", "stock": 1}
    response = stack.post(f"/api/{CATALOG}/products", body, headers={"Authorization": f"Bearer {staff_token}"})
    assert response.status_code == 201, response.text
    assert response.json()["price"] == "4.20"


@pytest.mark.parametrize(
    "path", ["/healthz", f"/api/{ACCOUNTS}", f"/api/{ACCOUNTS}/health", "/no/such/path", "/status/data.json"]
)
def test_every_json_body_ends_with_a_newline(stack, path):
    response = stack.get(path)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content.endswith(b"\n"), response.content[-40:]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_links_to_its_interactive_api_docs_which_work_through_the_gateway(stack, browser, service):
    """Swagger UI from the service's own files, under the gateway's content security policy: no console error."""
    docs = stack.get(f"/api/{service}").json()["links"]["docs"]
    browser.get(f"{stack.base_url}{docs}")
    summaries = "return [...document.querySelectorAll('.opblock-summary-path')].map(path => path.textContent);"
    assert wait_until(lambda: browser.execute_script(summaries), timeout=10)
    shown = set(browser.execute_script(summaries))
    assert shown == set(stack.get(f"/api/{service}/openapi.json").json()["paths"]) and shown, shown
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []


# --- logs -------------------------------------------------------------------------------------------------------

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def log_lines(stack, *services: str) -> list[str]:
    return [
        line for line in stack.compose("logs", "--no-log-prefix", "--no-color", *services).stdout.splitlines() if line
    ]


def test_every_log_line_of_every_container_is_json_with_one_timestamp_format(stack):
    """The stack's own containers write one shape; Prometheus (the metrics profile) its own JSON, with the same
    timestamps."""
    lines = log_lines(stack, *SERVICES, GATEWAY, STATUS)
    assert len(lines) > 50  # uWSGI's banners, the migrations, requests: all of them
    for line in lines:
        record = json.loads(line)
        assert ISO_UTC.fullmatch(record["time"]), line
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        assert record["service"], line
    if stack.containers(PROMETHEUS):
        lines = log_lines(stack, PROMETHEUS)
        assert lines
        for line in lines:
            record = json.loads(line)
            assert ISO_UTC.fullmatch(record["ts"]) and record["level"] in ("debug", "info", "warn", "error"), line


def test_healthchecks_stay_out_of_the_access_logs(stack):
    """Every container is checked every 2 s; none of those checks may be a log line."""
    since = datetime.now(UTC)
    containers = [*(stack.container(service) for service in SERVICES), stack.container(GATEWAY)]

    def checked_since(container) -> bool:
        container.reload()
        checks = container.attrs["State"]["Health"]["Log"]
        return any(engine_time(check["Start"]) > since for check in checks)

    assert wait_until(lambda: all(checked_since(container) for container in containers), timeout=15)
    time.sleep(gateway_log_delay_seconds() + 0.5)  # a line the gateway wrote would be in its log by now
    for container in containers:
        # The engine's `since` is in whole seconds: each line's own time decides.
        records = [json.loads(line) for line in container.logs(since=since).decode().splitlines() if line]
        requests = [r for r in records if "path" in r and datetime.fromisoformat(r["time"]) > since]
        assert requests == [], (container.name, requests)


def test_make_logs_follows_one_service_readably(stack):
    """scripts/readable-logs.py, which `make logs` pipes the JSON lines through: a request reads as one line."""
    stack.get(f"/api/{CATALOG}/products", headers={"X-Request-ID": "readable-logs-1"})
    lines = stack.compose("logs", "--no-log-prefix", "--no-color", CATALOG).stdout
    readable = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readable-logs.py")], input=lines, capture_output=True, text=True
    ).stdout.splitlines()
    (request,) = [line for line in readable if "[readable-logs-1]" in line]
    expected = (
        rf"\d\d:\d\d:\d\d\.\d{{3}} INFO +{CATALOG}/\w+ +GET /api/{CATALOG}/products 200 [\d.]+ ms  \[readable-logs-1\]"
    )
    assert re.fullmatch(expected, request), request
    assert len(readable) == len(lines.splitlines())


def test_make_logs_prints_no_terminal_control_of_composes_own_lines():
    """Compose's `logs --follow` says a container exited with "\\r\\x1b[K" before it, even with --no-color."""
    composes_line = "\r\x1b[Kservice2-1 exited with code 0\n"
    readable = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readable-logs.py")],
        input=composes_line,
        capture_output=True,
        text=True,
    ).stdout
    assert readable == "service2-1 exited with code 0\n"


def test_make_venv_installs_only_what_the_walkthroughs_tools_import_and_each_runs_from_it(tmp_path):
    """The walkthrough's tools (scale, load, deploy, swarm-*) have an environment of their own, a few locked
    packages (on main, `make venv` installed the whole development environment: tests, linters, Django)."""
    tools = tmp_path / "tools"
    made = subprocess.run(
        ["make", "--no-print-directory", "venv", f"TOOLS={tools}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert re.search(r"^venv: ready in \d+ s$", made.stdout, re.M), made.stdout
    listed = subprocess.run([tools / "bin" / "pip", "list", "--format", "json"], capture_output=True, text=True)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    lock = (ROOT / "scripts" / "requirements.lock").read_text()
    locked = {name.lower() for name in re.findall(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    assert installed - {"pip", "setuptools"} == locked
    assert "django" not in installed
    for tool in ("scripts/scale.py", "scripts/load.py", "scripts/deploy.py", "swarm/swarm.py", "lab/cluster.py"):
        ran = subprocess.run([tools / "bin" / "python", ROOT / tool, "--help"], capture_output=True, text=True)
        assert ran.returncode == 0, (tool, ran.stderr)
