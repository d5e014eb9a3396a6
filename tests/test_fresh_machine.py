"""The README's set-up on a fresh machine: a container standing for one (lab/machine.Dockerfile: Debian with git,
make and Python 3, the host's trusted CAs, room for an engine), into which the tree is cloned and `make up` is run
alone; then the README's first request. `make test-fresh-machine`, in make test-all; it prints its times.

Everything make up needs it finds or makes itself: the engine and Compose (scripts/ensure-docker.sh), the base
images from Debian packages (no registry serves the official ones here), the host's CA bundle in them (found by
its own check that this network intercepts TLS). The machine reaches Debian's mirror and PyPI as the host does.
"""

import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import docker
import pytest

import engine
from project import ROOT

# The host's trust store, as the machine's own: what a machine on this network trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NAME = f"microstack-test-machine-{uuid.uuid4().hex[:8]}"
# Labelled as a Compose project's, so that CI's count of what a run left finds it if it stays.
LABELS = {"com.docker.compose.project": NAME}
# An engine in a container, as this kernel allows it (lab/docker-compose.yml, x-node, says why each). The docker
# CLI's options: the SDK has no systempaths (the CLI turns it into the API's empty masked paths).
ENGINE_ROOM = [
    "--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt=seccomp=unconfined",
    "--security-opt=apparmor=unconfined", "--security-opt=systempaths=unconfined", "--cgroupns=host",
    "--tmpfs=/run", "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
]  # fmt: skip
MAKE_UP_TIMEOUT_SECONDS = 1500


def debian_image() -> str:
    """The project's Debian base (DEBIAN_IMAGE in .env, from make base-images): the machine's system."""
    settings = (ROOT / ".env").read_text() if (ROOT / ".env").exists() else ""
    found = re.search(r"^DEBIAN_IMAGE=(\S+)", settings, re.M)
    assert found, "DEBIAN_IMAGE is not in .env: make base-images names it"
    return found.group(1)


def readme_first_request() -> str:
    """The URL of the README's first request (Run it: `curl -i <url>`, after make up)."""
    found = re.search(r"^make up\ncurl -i (\S+)$", (ROOT / "README.md").read_text(), re.M)
    assert found, "the README's Run it has no `make up` and `curl -i URL`"
    return found.group(1)


def in_machine(machine, *command: str, timeout: float = 300, workdir: str = "/root") -> tuple[int, str, float]:
    """A command run in the machine as its root user would in a shell: its status, output and seconds."""
    started = time.monotonic()
    result = subprocess.run(["docker", "exec", "--workdir", workdir, machine.id, *command], capture_output=True,
                            text=True, timeout=timeout)  # fmt: skip
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    client = docker.from_env()
    context = tmp_path_factory.mktemp("machine")
    shutil.copy(ROOT / "lab" / "machine.Dockerfile", context / "Dockerfile")
    shutil.copy(HOST_CA_BUNDLE, context / "ca-certificates.crt")
    (context / "daemon.json").write_text(f'{{"cgroup-parent": "/{NAME}"}}\n')
    image, _ = client.images.build(path=str(context), tag=NAME, buildargs={"DEBIAN_IMAGE": debian_image()},
                                   labels=LABELS, rm=True)  # fmt: skip
    storage = client.volumes.create(f"{NAME}-docker", labels=LABELS)
    labels = [f"--label={key}={value}" for key, value in LABELS.items()]
    container = None
    try:
        started = subprocess.run(["docker", "run", "--detach", "--init", f"--name={NAME}", "--hostname=fresh-machine",
                                  *labels, *ENGINE_ROOM, f"--volume={storage.name}:/var/lib/docker", image.id],
                                 capture_output=True, text=True, check=True)  # fmt: skip
        container = client.containers.get(started.stdout.strip())
        yield container
    finally:
        if container is not None:
            # What make up started in it goes first, so that no container of its engine outlives the machine.
            in_machine(container, "docker", "compose", "down", "--volumes", workdir="/root/microstack", timeout=180)
            container.remove(force=True)
        engine.remove_cgroup_parents([NAME])
        storage.remove(force=True)
        client.images.remove(image.id, force=True)


def test_make_up_alone_sets_up_a_fresh_machine_and_the_readmes_first_request_answers(machine, capsys):
    bundle = io.BytesIO()
    history = subprocess.run(["git", "-C", str(ROOT), "bundle", "create", "-", "HEAD"], capture_output=True,
                             check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=bundle, mode="w") as archive:
        entry = tarfile.TarInfo("microstack.bundle")
        entry.size = len(history)
        archive.addfile(entry, io.BytesIO(history))
    machine.put_archive("/tmp", bundle.getvalue())

    cloned, said_by_clone, clone_took = in_machine(
        machine, "git", "clone", "--quiet", "/tmp/microstack.bundle", "microstack"
    )
    assert cloned == 0, said_by_clone
    status, said, took = in_machine(machine, "make", "up", workdir="/root/microstack", timeout=MAKE_UP_TIMEOUT_SECONDS)
    url = readme_first_request()
    # As curl would send it; the machine has no curl, and Python is what it has.
    request = f"import urllib.request as r; a = r.urlopen({url!r}, timeout=10); print(a.status, a.read().decode())"
    answered, answer, _ = in_machine(machine, "python3", "-c", request)

    set_up = [line for line in said.splitlines() if re.match(r"(up|ensure-docker|base-images|venv): ", line)]
    with capsys.disabled():
        print("\nfresh machine: what make up said it set up:\n  " + "\n  ".join(set_up))
        print(f"fresh machine: `git clone` {clone_took:.0f} s, `make up` exited {status} after {took:.0f} s; "
              f"the README's first request ({url}): {answer.strip()}")  # fmt: skip
    assert status == 0, said[-4000:]
    assert answered == 0, answer
    code, body = answer.split(" ", 1)
    assert (code, json.loads(body)["status"]) == ("200", "ok"), answer
    # A first start on SQLite builds what it runs on: no PostgreSQL or Prometheus base image (minutes each).
    _, base_images, _ = in_machine(machine, "docker", "images", "--format", "{{.Repository}}", "microstack-base/*")
    assert sorted(base_images.split()) == ["microstack-base/debian", "microstack-base/nginx", "microstack-base/python"]
