"""Stops the stack, whichever variant started it (`make down`, `make down V=1`).

The default Compose files name neither PostgreSQL's databases nor the bench's rows: `docker compose down` alone
leaves their networks, which then hold the names a Swarm stack of the same name needs. This removes every
container and network carrying the project's label, and with --volumes every volume too.
"""

import argparse
import sys

from project import ComposeProject, compose_project_name, tool_main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", action="store_true", help="delete every volume of the project too")
    arguments = parser.parse_args()

    def take_down() -> None:
        project = ComposeProject(compose_project_name())
        left = project.take_down(volumes=arguments.volumes)
        kept = "" if arguments.volumes else "; its volumes are kept (V=1 deletes them)"
        print(f"down: the project {project.project} is down{kept}", flush=True)
        if left:
            print(f"down: the engine kept {', '.join(left)} (see the line above)", flush=True)

    return tool_main("down", take_down)


if __name__ == "__main__":
    sys.exit(main())
