"""Each service answers as its OpenAPI document says, on either database: schemathesis makes requests from the
document, valid and not, through the gateway, and checks every answer (no 5xx, a documented status, content
type, headers and body, invalid input refused, valid input accepted). Its own command runs it: its pytest plugin
does not work with this pytest."""

import subprocess
import sys
from pathlib import Path

import pytest

from project import ACCOUNTS, CATALOG

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis.toml"
# Bounded and the same on every run: at most this many generated requests per operation and phase, one seed.
# Two phases: every documented boundary and type of every parameter (coverage), then random valid and invalid
# requests (fuzzing). Stateful sequences, which schemathesis infers from the document's links, found nothing
# more here and cost a minute of CI on each database.
EXAMPLES, SEED, PHASES = 15, 1, "coverage,fuzzing"


@pytest.fixture(scope="module")
def authorization(stack, staff_token) -> dict[str, str]:
    """What each service's requests carry: staff writes the catalog; a customer calls the others."""
    customer = stack.customer("conformance")["Authorization"]
    return {ACCOUNTS: customer, CATALOG: f"Bearer {staff_token}"}


def test_each_service_answers_as_its_openapi_document_says(stack, service, authorization, customer, tmp_path):
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{stack.base_url}/api/{service}/openapi.json",
        "--checks", "all", "--phases", PHASES, "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--generation-database", "none", "--request-timeout", "10", "--no-color",
        "--header", f"Authorization: {authorization.get(service, customer['Authorization'])}",
    ]  # fmt: skip
    if service == ACCOUNTS:
        # Logout revokes the token every other request carries; logins meet the gateway's limit (5 a second, after
        # a burst): at 10 a second most reach accounts.
        command += ["--exclude-path", f"/api/{ACCOUNTS}/logout", "--rate-limit", "10/s"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
