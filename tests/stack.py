"""A composed copy of the stack under its own project name and port, driven through `docker compose` and the SDK."""

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import requests
from docker.models.containers import Container

ROOT = Path(__file__).resolve().parent.parent
# A service is a folder holding a Django project; the folder's name is the service's name.
SERVICES = sorted(path.parent.parent.name for path in ROOT.glob("*/config/settings.py"))
GATEWAY = "nginx"
# The roles of the services, as the suite drives them.
ACCOUNTS, CATALOG, ORDERS, NOTIFICATIONS = "service1", "service2", "service3", "service4"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Polls condition until it holds or timeout seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Stack:
    def __init__(self, project: str, port: int, environment: dict[str, str] | None = None):
        self.project = project
        self.port = port
        self.environment = environment or {}
        self.base_url = f"http://127.0.0.1:{port}"
        self.docker = docker.from_env()
        self.http = requests.Session()

    def compose(self, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
        environment = {**os.environ, **self.environment, "GATEWAY_PORT": str(self.port)}
        command = ["docker", "compose", "--project-name", self.project, *arguments]
        return subprocess.run(
            command, cwd=ROOT, env=environment, check=True, timeout=timeout, capture_output=True, text=True
        )

    def up(self) -> None:
        self.compose("up", "--build", "--detach", "--wait", "--wait-timeout", "180", timeout=900)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--rmi", "local", "--timeout", "10")

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.http.get(self.base_url + path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return self.http.request(method, self.base_url + path, **kwargs)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def login(self, username: str, password: str) -> str:
        response = self.post(f"/api/{ACCOUNTS}/login", {"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def stock_of(self, product_id: int) -> int:
        return self.get(f"/api/{CATALOG}/products/{product_id}").json()["stock"]

    def scale(self, service: str, replicas: int) -> None:
        """Runs this many replicas of service, leaving every other container as it is."""
        self.compose("up", "--detach", "--no-recreate", "--wait", "--scale", f"{service}={replicas}", timeout=300)

    def served_by(self, path: str) -> str:
        return self.get(path).headers["X-Served-By"]

    def containers(self, service: str | None = None, *, all: bool = False) -> list[Container]:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return self.docker.containers.list(all=all, filters={"label": labels})

    def container(self, service: str) -> Container:
        (only,) = self.containers(service)
        return only

    def answers(self, path: str, status: int = 200) -> bool:
        try:
            return self.get(path, timeout=2).status_code == status
        except requests.RequestException:
            return False
