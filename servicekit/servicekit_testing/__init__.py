"""Test helpers every service shares; loaded as a pytest plugin by each service's pytest.ini. Beside servicekit, not
in it: the images copy servicekit/servicekit alone, so no test code (nor pytest) runs in a service.

ServiceContract is the contract every service keeps, as tests each service runs against itself: each service's
pytest.ini collects servicekit_testing.contract, which opts in.
"""

import functools
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management import call_command

# Every service's settings module has this name; pytest-django reads it after loading this plugin.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


@pytest.fixture(autouse=True)
def fresh_service_clients():
    """Each test starts with closed circuit breakers: one test's failures must not open another's."""
    from servicekit import http

    http.forget_clients()
    yield
    http.forget_clients()


@pytest.fixture(autouse=True)
def fresh_service_keys():
    """Each test starts knowing no other service's key: those it signs with are published by signed_by()."""
    from servicekit import verification

    verification.public_keys.forget()
    yield
    verification.public_keys.forget()


def service_token(
    caller: str,
    method: str,
    path: str,
    body: bytes | str = b"",
    *,
    audience: str = "",
    signing_key: Ed25519PrivateKey | None = None,
    lifetime: int = 30,
    **claims,
) -> str:
    """A token as caller would sign it for this request to this service; its key is published unless signing_key
    forges one. claims replace any of the token's own (another method, path, body digest or id)."""
    from servicekit import identity, verification

    key = Ed25519PrivateKey.generate()
    verification.public_keys.remember(caller, identity.public_key_pem(key))
    now = int(time.time())
    token_claims = {
        "iss": caller,
        "aud": audience or settings.SERVICE_NAME,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "htm": method.upper(),
        "htu": path,
        "bdh": identity.body_digest(body),
        **claims,
    }
    return jwt.encode(token_claims, signing_key or key, algorithm=identity.ALGORITHM)


def signed_by(caller: str, method: str, path: str, body: bytes | str = b"", **token_options) -> dict[str, str]:
    """Headers of an internal call from caller to this service: method path (with its query) and body."""
    from servicekit import identity

    return {identity.TOKEN_HEADER: service_token(caller, method, path, body, **token_options)}


def internal_call(client, caller: str, method: str, path: str, body=None, headers=None, **token_options):
    """An internal call from caller to this service through Django's test client, its token signed for exactly
    this request; body is JSON-encoded here, so the digest is of the bytes sent."""
    data = "" if body is None else json.dumps(body)
    signed = signed_by(caller, method, path, data, **token_options)
    send = getattr(client, method.lower())
    return send(path, data, content_type="application/json", headers={**(headers or {}), **signed})


@pytest.mark.django_db
class ServiceContract:
    @property
    def prefix(self) -> str:
        return f"/api/{settings.SERVICE_NAME}"

    def test_health_names_the_service_and_instance(self, client):
        response = client.get(f"{self.prefix}/health")
        body = response.json()
        assert response.status_code == 200
        assert body["service"] == settings.SERVICE_NAME
        assert body["status"] == "ok"
        assert body["instance"] == settings.INSTANCE_NAME
        assert (body["name"], body["node"]) == (settings.REPLICA_NAME, settings.NODE_NAME)
        assert body["checks"] == {"database": "ok"}

    def test_health_names_the_task_and_node_swarm_gives_it(self, client, settings):
        settings.REPLICA_NAME, settings.NODE_NAME = "microstack_service.2", "node3"
        body = client.get(f"{self.prefix}/health").json()
        assert (body["name"], body["node"]) == ("microstack_service.2", "node3")

    def test_every_response_says_who_served_it(self, client):
        response = client.get(f"{self.prefix}/health")
        assert response["X-Served-By"] == f"{settings.SERVICE_NAME}/{settings.INSTANCE_NAME}"

    def test_a_valid_request_id_is_returned_unchanged(self, client):
        response = client.get(f"{self.prefix}/health", headers={"X-Request-ID": "abc-123"})
        assert response["X-Request-ID"] == "abc-123"

    def test_a_missing_or_malformed_request_id_is_replaced(self, client):
        missing = client.get(f"{self.prefix}/health")
        malformed = client.get(f"{self.prefix}/health", headers={"X-Request-ID": "bad id\twith spaces"})
        assert len(missing["X-Request-ID"]) == 32
        assert len(malformed["X-Request-ID"]) == 32
        assert missing["X-Request-ID"] != malformed["X-Request-ID"]

    @pytest.mark.parametrize("suffix", ["", "/"])
    def test_a_route_answers_with_or_without_a_trailing_slash(self, client, suffix):
        response = client.get(f"{self.prefix}/health{suffix}")
        assert response.status_code == 200
        assert response.json()["service"] == settings.SERVICE_NAME

    @pytest.mark.parametrize("suffix", ["", "/"])
    def test_the_service_prefix_names_the_service_and_links_to_what_it_serves(self, client, suffix):
        response = client.get(f"{self.prefix}{suffix}")
        body = response.json()
        assert response.status_code == 200
        assert (body["service"], body["version"]) == (settings.SERVICE_NAME, "1.0.0")
        assert set(body["links"]) == {"health", "docs", "openapi"}
        for link in body["links"].values():
            assert client.get(link).status_code == 200, link

    @pytest.mark.parametrize("path", ["/health", "", "/no-such-route", "/openapi.json"])
    def test_every_json_body_ends_with_a_newline(self, client, path):
        response = client.get(f"{self.prefix}{path}")
        assert response["Content-Type"].startswith("application/json")
        assert response.content.endswith(b"}\n")

    def test_a_json_body_of_ours_is_not_copied_to_end_its_line(self, rf):
        """The fast path: servicekit.jsonio encodes the newline; the middleware adds one only to others' bodies."""
        from servicekit.jsonio import json_response
        from servicekit.middleware import RequestContextMiddleware

        encoded = json_response({"status": "ok"})
        body = encoded.content
        response = RequestContextMiddleware(lambda request: encoded)(rf.get(self.prefix, HTTP_HOST="localhost"))
        assert response.content is body
        assert body.endswith(b"}\n")

    def test_the_request_id_is_read_without_building_a_map_of_every_header(self, client):
        response = client.get(f"{self.prefix}/health", headers={"X-Request-ID": "read-me"})
        assert response["X-Request-ID"] == "read-me"
        assert "headers" not in response.wsgi_request.__dict__  # HttpRequest.headers, a cached_property

    def test_the_health_details_are_imported_once_not_per_request(self, client, monkeypatch):
        from servicekit import views

        assert client.get(f"{self.prefix}/health").status_code == 200
        monkeypatch.setattr(views, "import_string", lambda name: pytest.fail(f"{name} imported again"))
        assert client.get(f"{self.prefix}/health").status_code == 200
        assert client.get(self.prefix).status_code == 200

    def test_a_body_is_parsed_once_and_the_api_takes_what_was_parsed(self, rf, monkeypatch):
        from servicekit import jsonio
        from servicekit.body import JsonBodyMiddleware

        request = rf.post(f"{self.prefix}/anything", b'{"quantity": 1}', content_type="application/json")
        assert JsonBodyMiddleware(lambda request: None).process_view(request, None, (), {}) is None
        monkeypatch.setattr(jsonio, "loads", lambda body: pytest.fail("the body was parsed a second time"))
        assert jsonio.ParsedOnceParser().parse_body(request) == {"quantity": 1}

    def test_a_204_carries_no_body_not_even_a_newline(self, rf):
        from django.http import HttpResponse

        from servicekit.middleware import RequestContextMiddleware

        middleware = RequestContextMiddleware(lambda request: HttpResponse(status=204, content_type="application/json"))
        response = middleware(rf.delete(f"{self.prefix}/anything", HTTP_HOST="localhost"))
        assert (response.status_code, response.content) == (204, b"")

    def test_unknown_route_is_a_json_404(self, client):
        response = client.get(f"{self.prefix}/no-such-route/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_wrong_method_is_a_json_405(self, client):
        response = client.post(f"{self.prefix}/health", content_type="application/json")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response["Allow"] == "GET"

    @pytest.fixture
    def access_lines(self, monkeypatch, settings) -> list[dict]:
        """The access-log lines the service writes to the container's log (ACCESS_LOG on), as JSON objects."""
        from servicekit import logs

        settings.ACCESS_LOG = True
        written: list[dict] = []
        monkeypatch.setattr(logs, "write_line", lambda line: written.append(json.loads(line)))
        return written

    def test_each_request_is_logged_once_with_its_context(self, client, access_lines, monkeypatch):
        from servicekit import middleware

        clock = iter([10.0])  # the request starts at 10 s and every later reading says 10.25 s
        monkeypatch.setattr(middleware.time, "perf_counter", lambda: next(clock, 10.25))
        client.get(f"{self.prefix}/health", headers={"X-Request-ID": "log-me"})
        (line,) = access_lines
        assert (line["logger"], line["level"], line["message"]) == ("servicekit.access", "INFO", "request")
        assert (line["method"], line["path"], line["status"]) == ("GET", f"{self.prefix}/health", 200)
        assert (line["service"], line["instance"]) == (settings.SERVICE_NAME, settings.INSTANCE_NAME)
        assert line["request_id"] == "log-me"
        assert line["duration_ms"] == 250.0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    def test_the_access_line_is_written_without_a_log_record(self, client, access_lines, caplog):
        """The fast path: the logging machinery (a record, a handler, a formatter) is half an endpoint's CPU."""
        caplog.set_level("INFO")
        client.get(f"{self.prefix}/health")
        assert len(access_lines) == 1
        assert [record for record in caplog.records if record.name == "servicekit.access"] == []

    def test_the_docker_healthcheck_is_not_logged_and_a_client_cannot_pass_for_it(self, client, access_lines):
        from servicekit.healthcheck import HEALTHCHECK_VARIABLE

        client.get(f"{self.prefix}/health", **{HEALTHCHECK_VARIABLE: "1"})
        assert access_lines == []
        client.get(f"{self.prefix}/health", headers={"Servicekit-Healthcheck": "1"})
        assert len(access_lines) == 1

    def test_the_access_log_is_off_unless_turned_on(self, client, access_lines, settings):
        settings.ACCESS_LOG = False
        client.get(f"{self.prefix}/health")
        assert access_lines == []

    @staticmethod
    def setting_in_a_fresh_process(tmp_path, name: str, variable: str, value: str | None) -> str:
        """A setting as a new process of the service reads it, with the environment variable set to value (or
        unset): pytest-django's own process has its settings fixed already (DEBUG forced off, say)."""
        environment = {key: text for key, text in os.environ.items() if key != variable}
        environment |= {"DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
        if value is not None:
            environment[variable] = value
        code = f"from django.conf import settings; print(settings.{name})"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
        return result.stdout.strip()

    @pytest.mark.parametrize(("value", "debug"), [(None, False), ("0", False), ("false", False), ("true", True)])
    def test_debug_is_off_unless_turned_on(self, tmp_path, value, debug):
        assert self.setting_in_a_fresh_process(tmp_path, "DEBUG", "DJANGO_DEBUG", value) == str(debug)

    @pytest.mark.parametrize(("given", "limit"), [(None, 1024 * 1024), ("2097152", 2097152)])
    def test_the_body_limit_is_the_one_the_gateway_is_given(self, tmp_path, given, limit):
        """MAX_BODY_BYTES, the variable docker-compose.yml gives the gateway and every service alike."""
        assert (
            int(self.setting_in_a_fresh_process(tmp_path, "DATA_UPLOAD_MAX_MEMORY_SIZE", "MAX_BODY_BYTES", given))
            == limit
        )

    def test_the_deployment_checks_pass(self):
        call_command("check", deploy=True, fail_level="WARNING", stdout=io.StringIO())

    def test_migrations_are_applied_under_the_database_lock(self):
        output = io.StringIO()
        call_command("migrate_serialised", stdout=output)  # an advisory lock on PostgreSQL, a file lock on SQLite
        assert "No migrations to apply." in output.getvalue()

    def test_a_second_replica_migrating_waits_for_the_lock_the_first_holds(self):
        from django.db import connection

        from servicekit.management.commands.migrate_serialised import migration_lock

        events: list[str] = []
        holding = threading.Event()

        def first_replica():  # a thread of its own: its own database session, as another replica would have
            try:
                with migration_lock():
                    events.append("first holds the lock")
                    holding.set()
                    time.sleep(0.5)
                    events.append("first releases it")
            finally:
                connection.close()

        first = threading.Thread(target=first_replica)
        first.start()
        assert holding.wait(timeout=5)
        with migration_lock():
            events.append("second holds the lock")
        first.join(timeout=5)
        assert events == ["first holds the lock", "first releases it", "second holds the lock"]

    def test_the_public_api_document_shows_no_internal_route(self, client):
        paths = client.get(f"{self.prefix}/openapi.json").json()["paths"]
        assert paths
        assert [path for path in paths if "/internal/" in path] == []

    def test_every_internal_route_refuses_a_call_that_proves_no_service(self, client):
        """Every route of the URLconf under /internal/, by every method: with no token, or a forged one, it
        answers 401 or 405 and serves nothing. The check is each route's own (ServiceAuth), so a route that
        forgets it is found here, not left to the public 404 the gateway answers for /internal/ paths."""
        from servicekit.internal import INTERNAL_CALLERS

        routes = internal_routes()
        named = set(INTERNAL_CALLERS.get(settings.SERVICE_NAME, {}))
        assert {name for name in named if any(f"/internal/{name}" in route for route in routes)} == named
        forged = {"HTTP_X_SERVICE_TOKEN": "e30.e30.forged"}
        for route in routes:
            answers = {
                (method, bool(headers)): client.generic(method, route, b"{}", "application/json", **headers).status_code
                for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
                for headers in ({}, forged)
            }
            assert set(answers.values()) <= {401, 405} and 401 in answers.values(), (route, answers)

    def test_the_api_document_says_where_it_is_served_and_shapes_every_error_alike(self, client):
        document = client.get(f"{self.prefix}/openapi.json").json()
        assert document["servers"] == [{"url": "/", "description": "the gateway this document was read through"}]
        error_shape = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in document["paths"].items():
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    if int(status) >= 400:
                        assert response["content"]["application/json"]["schema"] == error_shape, (path, status)
                        assert response["description"], (path, status)

    def test_every_error_an_operation_answers_is_in_the_api_document(self, client, accounts, monkeypatch):
        """Each operation asked as a client can go wrong: no token, a body that is malformed, not JSON or too big,
        a resource that is not there, its database gone. What it answers, it documents; so it does the gateway's
        429 where the gateway limits it."""
        from django.db.backends.base.base import BaseDatabaseWrapper
        from django.db.utils import OperationalError

        document = client.get(f"{self.prefix}/openapi.json").json()
        too_big = b"[" + b"0," * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b"0]"
        undocumented = []
        for template, operations in document["paths"].items():
            path = re.sub(r"\{[^}]+\}", "999999", template)
            for method, operation in operations.items():
                documented = {int(status) for status in operation["responses"]}
                asked: dict[str, dict] = {"no token": {}}
                if operation.get("requestBody"):
                    asked |= {
                        "malformed JSON": {"data": "{", "content_type": "application/json", "headers": STAFF},
                        "not JSON": {"data": "a=1", "content_type": "text/plain", "headers": STAFF},
                        "too big": {"data": too_big, "content_type": "application/json", "headers": STAFF},
                    }
                for fault, request in asked.items():
                    status = client.generic(method.upper(), path, **request).status_code
                    if status not in documented:
                        undocumented.append((method, template, fault, status))
                if limited_at_the_gateway(method, template) and 429 not in documented:
                    undocumented.append((method, template, "the gateway's limit", 429))
                with monkeypatch.context() as database_gone:

                    def unreachable(connection):
                        raise OperationalError("the database is gone")

                    database_gone.setattr(BaseDatabaseWrapper, "ensure_connection", unreachable)
                    status = client.generic(method.upper(), path, headers=STAFF).status_code
                    if status not in documented:
                        undocumented.append((method, template, "database gone", status))
        assert undocumented == []

    def test_the_interactive_api_docs_load_only_their_own_files(self, client):
        page = client.get(f"{self.prefix}/docs")
        assert page.status_code == 200
        assert page["Content-Type"].startswith("text/html")
        html = page.content.decode()
        assert "://" not in html, "nothing from another origin"
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets), assets
        types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
        for asset in assets:
            assert asset.startswith(f"{self.prefix}/static/"), asset
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert response["Content-Type"].startswith(types[asset[asset.rindex(".") :]]), (
                asset,
                response["Content-Type"],
            )

    def test_deeply_nested_json_is_a_json_400(self, client):
        nested = "[" * 100_000 + "]" * 100_000
        response = client.post(f"{self.prefix}/health", nested, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_json"

    def test_an_unexpected_exception_is_a_json_500_with_the_request_id(self, client, monkeypatch):
        from servicekit import views

        def broken():
            raise RuntimeError("a bug")

        monkeypatch.setattr(views.connection, "ensure_connection", broken)
        client.raise_request_exception = False
        response = client.get(f"{self.prefix}/health", headers={"X-Request-ID": "find-me"})
        assert response.status_code == 500
        assert response.json()["error"] == {
            "code": "internal_error",
            "message": "Internal error",
            "details": {"request_id": "find-me"},
        }

    def test_every_domain_error_of_the_service_has_a_status_in_its_api(self):
        from django.utils.module_loading import import_string

        from servicekit.api import status_of
        from servicekit.exceptions import DomainError

        api = import_string(settings.SERVICE_API)
        own_errors = [kind for kind in subclasses(DomainError) if not kind.__module__.startswith("servicekit.")]
        answered = [kind for kind in own_errors if kind in api._exception_handlers]  # an API handler of its own
        missing = [
            kind.__name__
            for kind in own_errors
            if kind not in answered and status_of(kind, api.domain_statuses) is None
        ]
        assert missing == []

    def test_an_allowed_host_is_looked_up_not_parsed(self, client, monkeypatch):
        """The fast path: a Host in ALLOWED_HOSTS as it is needs no parse by Django's get_host()."""
        from django.http import HttpRequest

        monkeypatch.setattr(HttpRequest, "get_host", lambda request: pytest.fail("the Host was parsed"))
        assert client.get(f"{self.prefix}/health", headers={"Host": "localhost"}).status_code == 200

    def test_a_host_not_allowed_is_a_json_400(self, client):
        response = client.get(f"{self.prefix}/health", headers={"Host": "evil.example"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_host"


# A value for each kind of path parameter, to reach a route whatever its parameters.
SAMPLE_PARAMETERS = {"int": "1", "uuid": "0b1d4b4e-5f5e-4c3a-9d2e-6f0a7b8c9d10", "path": "x", "slug": "x", "str": "x"}


def internal_routes() -> list[str]:
    """Every path of the service's URLconf with /internal/ in it, each parameter given a sample value."""
    from django.urls import URLResolver, get_resolver

    def walk(patterns, prefix: str):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route

    def sample(match: re.Match) -> str:
        return SAMPLE_PARAMETERS.get(match["converter"] or "str", "x")

    routes = [
        "/" + re.sub(r"<(?:(?P<converter>\w+):)?\w+>", sample, route) for route in walk(get_resolver().url_patterns, "")
    ]
    return sorted({route for route in routes if "/internal/" in route})


@functools.cache
def gateway_limit_maps() -> list[list[tuple[str, str]]]:
    """The gateway's per-client limits (its 429), as nginx reads them (nginx/snippets/limits.inc): for each of its
    maps of "$request_method $uri", the regular expressions in order, each with its key ('""': not limited)."""
    limits = (settings.BASE_DIR.parent / "nginx" / "snippets" / "limits.inc").read_text()
    maps = []
    for name in ("login_client", "writes_client"):
        block = re.search(rf'map "\$request_method \$uri" \${name} {{\n(.*?)\n}}', limits, re.DOTALL)
        assert block, name
        maps.append(re.findall(r'^\s*"~(.+)" (\S+);$', block[1], re.MULTILINE))
    return maps


def limited_at_the_gateway(method: str, path: str) -> bool:
    """Whether one of the gateway's limits applies to a request: each map tried in order, as nginx does."""
    request = f"{method.upper()} {path}"
    for entries in gateway_limit_maps():
        key = next((key for pattern, key in entries if re.search(pattern, request)), '""')
        if key != '""':
            return True
    return False


def subclasses(kind: type) -> list[type]:
    direct: list[type] = kind.__subclasses__()
    return direct + [grandchild for child in direct for grandchild in subclasses(child)]


# Bearer tokens the stubbed accounts service knows, with the users they stand for.
TEST_USERS = {
    "staff-token": {"id": 1, "username": "staff", "is_staff": True},
    "ada-token": {"id": 2, "username": "ada", "is_staff": False},
    "grace-token": {"id": 3, "username": "grace", "is_staff": False},
}
STAFF = {"Authorization": "Bearer staff-token"}
ADA = {"Authorization": "Bearer ada-token"}
GRACE = {"Authorization": "Bearer grace-token"}


@pytest.fixture
def accounts():
    """The accounts service's introspection, stubbed with `responses`: it knows TEST_USERS' tokens and no others.

    Yields the RequestsMock, so a test can stub its service's other dependencies on it too.
    """
    import responses

    from servicekit.auth import introspections

    def introspect(request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        user = TEST_USERS.get(token)
        expires = int(time.time()) + 3600 if user else None
        return 200, {}, json.dumps({"active": user is not None, "user": user, "exp": expires})

    url = f"{settings.GATEWAY_INTERNAL_URL}/api/{settings.ACCOUNTS_SERVICE}/internal/introspect"
    introspections.clear()  # a worker's answers kept from another test's stub
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.GET, url, callback=introspect)
        yield mocked
    introspections.clear()
