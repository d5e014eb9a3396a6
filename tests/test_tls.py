"""Given a certificate and key (docker-compose.tls.yml), the gateway serves HTTPS with HSTS and redirects HTTP."""

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests
import trustme

from project import ACCOUNTS, GATEWAY, NOTIFICATIONS
from stack import Stack, ask_the_gateway, reserve_port, variant_stack


def gateway_gid(stack) -> int:
    """The gateway's group (docker-compose.yml, SOCKET_GID), as its image runs it: it reads the key through it."""
    return int(stack.container(GATEWAY).attrs["Config"]["User"].split(":")[1])


# The authority the variant's certificate is issued by, which the tests trust.
CERTIFICATE_AUTHORITY = trustme.CA()
# The variant's TLS port, ours for the session.
HELD_PORT_LOCKS: list = []


STATUS_USER, STATUS_PASSWORD = "operator", uuid.uuid4().hex


def password_hash(password: str) -> str:
    """As an operator makes one for the htpasswd file (docs/security.md): openssl's SHA-512 crypt."""
    return subprocess.run(
        ["openssl", "passwd", "-6", password], capture_output=True, text=True, check=True
    ).stdout.strip()


def tls_url(stack: Stack) -> str:
    return f"https://127.0.0.1:{stack.environment['GATEWAY_TLS_PORT']}"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return CERTIFICATE_AUTHORITY


@variant_stack
def tls_variant(shared: Stack) -> Stack:
    """The stack with docker-compose.tls.yml: a certificate, its key and a status htpasswd, readable by the
    gateway's group (as the shared stack's gateway runs), on a TLS port of its own."""
    directory = Path(tempfile.mkdtemp(prefix="microstack-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)  # once its stack is down: the session's end
    issued = CERTIFICATE_AUTHORITY.issue_cert("127.0.0.1", "localhost")
    certificate, key = directory / "certificate.pem", directory / "key.pem"
    issued.cert_chain_pems[0].write_to_path(certificate)
    issued.private_key_pem.write_to_path(key)
    os.chown(key, -1, gateway_gid(shared))
    key.chmod(0o640)
    certificate.chmod(0o644)
    htpasswd = directory / "status.htpasswd"
    htpasswd.write_text(f"{STATUS_USER}:{password_hash(STATUS_PASSWORD)}\n")
    os.chown(htpasswd, -1, gateway_gid(shared))
    htpasswd.chmod(0o640)
    tls_port, tls_port_lock = reserve_port()
    HELD_PORT_LOCKS.append(tls_port_lock)
    environment = {
        "GATEWAY_TLS_CERT": str(certificate),
        "GATEWAY_TLS_KEY": str(key),
        "GATEWAY_TLS_PORT": str(tls_port),
        "STATUS_HTPASSWD": str(htpasswd),
    }
    return Stack(f"microstack-test-tls-{uuid.uuid4().hex[:8]}", environment, ("docker-compose.tls.yml",))


@pytest.fixture(scope="module")
def tls_stack(stack_pool):
    yield from stack_pool.variant(tls_variant)


def test_the_gateway_serves_https_with_hsts(tls_stack, certificate_authority, tmp_path):
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(bundle)
    response = requests.get(f"{tls_url(tls_stack)}/api/{ACCOUNTS}/health/", verify=str(bundle), timeout=5)
    assert response.status_code == 200
    assert response.json()["service"] == ACCOUNTS
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_plain_http_redirects_to_https(tls_stack):
    response = tls_stack.get(f"/api/{ACCOUNTS}/health/?a=1", allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{tls_url(tls_stack)}/api/{ACCOUNTS}/health/?a=1"
    assert "Strict-Transport-Security" not in response.headers


def test_a_redirect_is_never_made_for_a_host_not_served(tls_stack):
    response = tls_stack.get("/", headers={"Host": "evil.example"}, allow_redirects=False)
    assert response.status_code == 421


def test_over_https_the_status_page_asks_the_operator_for_a_user_and_password(
    tls_stack, certificate_authority, tmp_path
):
    bundle = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(bundle)
    url = f"{tls_url(tls_stack)}/status/data.json"
    anonymous = requests.get(url, verify=str(bundle), timeout=5)
    wrong = requests.get(url, auth=(STATUS_USER, "not the password"), verify=str(bundle), timeout=5)
    operator = requests.get(url, auth=(STATUS_USER, STATUS_PASSWORD), verify=str(bundle), timeout=5)
    assert (anonymous.status_code, wrong.status_code, operator.status_code) == (401, 401, 200)
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert operator.json()["services"]


def test_over_https_without_a_credential_the_status_page_is_off(tmp_path):
    rendered = tmp_path / "gateway"
    environment = {**os.environ, "STATUS_HTPASSWD_FILE": str(tmp_path / "none")}
    gateway = Path(__file__).resolve().parent.parent / "nginx" / "entrypoint.sh"
    subprocess.run([gateway, "render", rendered, "tls"], env=environment, check=True, capture_output=True)
    assert (rendered / "generated" / "status-route.inc").read_text().strip() == "location ^~ /status { return 404; }"
    (tmp_path / "given").write_text(f"{STATUS_USER}:{password_hash(STATUS_PASSWORD)}\n")
    environment["STATUS_HTPASSWD_FILE"] = str(tmp_path / "given")
    subprocess.run([gateway, "render", rendered, "tls"], env=environment, check=True, capture_output=True)
    assert f"auth_basic_user_file {tmp_path / 'given'};" in (rendered / "generated" / "status-route.inc").read_text()


# Run in a service's container, in its socket volume: its public key kept aside, and a link in its place.
SWAP_THE_KEY = """
import os, sys
os.rename("service.pub", ".kept.pub")
os.symlink(sys.argv[1], "service.pub")
"""
PUT_THE_KEY_BACK = "import os; os.unlink('service.pub'); os.rename('.kept.pub', 'service.pub')"


@pytest.mark.parametrize("secret", ["/run/secrets/gateway_tls_key", "/run/secrets/status_htpasswd"])
def test_a_service_key_that_links_to_a_gateway_secret_serves_nothing(tls_stack, secret):
    """The key route serves each service's public key from that service's volume: a link there to the gateway's
    TLS key or its status htpasswd is not followed (nginx's disable_symlinks), and answers 403 as JSON."""
    attacker = tls_stack.container(NOTIFICATIONS)
    planted = attacker.exec_run(["python", "-c", SWAP_THE_KEY, secret], workdir="/run/uwsgi")
    assert planted.exit_code == 0, planted.output.decode()
    try:
        ((status, body),) = ask_the_gateway(attacker, "/run/gateway/internal.sock", [f"/keys/{NOTIFICATIONS}"]).values()
    finally:
        attacker.exec_run(["python", "-c", PUT_THE_KEY_BACK], workdir="/run/uwsgi")
    assert (status, "PRIVATE KEY" in body, f"{STATUS_USER}:" in body) == (403, False, False)
    assert '"code": "forbidden"' in body
