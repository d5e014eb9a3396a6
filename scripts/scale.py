"""Scales one service of the running stack and keeps the setting (`make scale SERVICE=service1 REPLICAS=3`).

Changing the workers rolls the service as `make deploy` does: new replicas with the new settings start beside
the old ones, and the old ones drain once the new serve, so no request fails (Compose alone would stop the old
replicas first). Changing the replicas alone starts or drains only the difference.

Replicas and workers are written to .env (SERVICEn_REPLICAS, SERVICEn_PROCESSES, SERVICEn_THREADS), which Compose
reads on every later command: a plain `docker compose up -d` keeps them, and every replica runs the same workers.
`docker compose up --scale` alone lasts until the next `up`; worker settings given only in a shell's environment
last that shell, and replicas started later in another shell would run other workers.
"""

import argparse
import json
import os
import subprocess
import sys

from deploy import Deployment
from preflight import worker_defaults, worker_setting_problems
from project import ROOT, SERVICES, ToolError, compose_project_name, environment_of, positive, run, tool_main


def say(message: str) -> None:
    print(f"scale: {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help=f"one of {', '.join(SERVICES)}")
    parser.add_argument("--replicas", type=positive, help="containers of the service")
    parser.add_argument("--processes", type=positive, help="uWSGI worker processes in each")
    parser.add_argument("--threads", type=positive, help="threads in each worker process")
    arguments = parser.parse_args()

    def scale() -> None:
        if arguments.service not in SERVICES:
            raise ToolError(f"unknown service {arguments.service!r}: choose one of {', '.join(SERVICES)}")
        prefix = arguments.service.upper()
        settings = {"REPLICAS": arguments.replicas, "PROCESSES": arguments.processes, "THREADS": arguments.threads}
        chosen = [f"{prefix}_{name}={value}" for name, value in settings.items() if value is not None]
        if not chosen:
            raise ToolError("nothing to change: give REPLICAS=, PROCESSES= or THREADS=")
        # The settings as Compose would resolve them with these: refused before .env or any container changes.
        trial = {**os.environ, **dict(setting.split("=", 1) for setting in chosen)}
        config = json.loads(run("docker", "compose", "config", "--format", "json", environment=trial).stdout)
        problems = worker_setting_problems(config, [arguments.service])
        if problems:
            raise ToolError(" ".join(problems) + " Nothing was changed.")
        project = Deployment(compose_project_name(), timeout=90)
        running = project.containers(arguments.service)
        subprocess.run([str(ROOT / "scripts" / "set-env.sh"), *chosen], check=True)
        if running and (arguments.processes or arguments.threads):
            say("rolling: replicas with the new workers start beside the old ones, which drain once the new serve")
            project.replace(arguments.service, running, arguments.replicas or len(running))
        say(f"applying .env to {arguments.service} of project {project.project}")
        # This service only: every other container stays as it is, whatever else .env now says.
        project.compose("up", "--detach", "--wait", "--no-deps", arguments.service, timeout=600)
        replicas = sorted(project.containers(arguments.service), key=lambda container: container.name)
        say(f"{arguments.service} runs {len(replicas)} replica(s):")
        defaults = worker_defaults()
        for container in replicas:
            processes = environment_of(container).get("UWSGI_PROCESSES") or defaults["PROCESSES"]
            threads = environment_of(container).get("UWSGI_THREADS") or defaults["THREADS"]
            print(f"  {container.name}  {processes} processes x {threads} threads")

    return tool_main("scale", scale)


if __name__ == "__main__":
    sys.exit(main())
