# Thin targets over docker compose, pytest and scripts/; README.md uses exactly these.
SHELL := /bin/bash
SERVICES := $(patsubst %/config/settings.py,%,$(wildcard */config/settings.py))
VENV := .venv
PYTHON ?= python3

.PHONY: up down logs deploy lint test unit integration bench bench-smoke drill base-images venv clean

## up: build and start the stack, returning once every container is healthy
up:
	docker compose up --build --detach --wait

## down: stop the stack (add V=1 to delete its volumes too)
down:
	docker compose down $(if $(V),--volumes)

## logs: follow every container's logs
logs:
	docker compose logs --follow

## deploy: roll one service to its new image without touching the others (SERVICE=service2), or reload nginx
deploy: $(VENV)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make deploy SERVICE=<service1..service4|nginx>"; exit 2; }
	$(VENV)/bin/python scripts/deploy.py $(SERVICE)

## lint: every linter, zero findings; each exception is written next to what it excuses, with its reason
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -r servicekit/servicekit $(SERVICES) -x '*/tests/*,*/migrations/*,servicekit/servicekit/testing.py'
	$(VENV)/bin/hadolint servicekit/Dockerfile nginx/Dockerfile base/*.Dockerfile
	$(VENV)/bin/compose-lint check --quiet --strict-config --fail-on low docker-compose.yml
	merged=$$(mktemp --suffix=.yml) && GATEWAY_TLS_CERT=/dev/null GATEWAY_TLS_KEY=/dev/null \
	  docker compose -f docker-compose.yml -f docker-compose.tls.yml config >"$$merged" \
	  && $(VENV)/bin/compose-lint check --quiet --strict-config --fail-on low "$$merged"; status=$$?; rm -f "$$merged"; exit $$status
	GIXY=$(VENV)/bin/gixy scripts/lint-nginx.sh

## test: every unit test, then the integration suite against a fresh copy of the stack
test: unit integration

## unit: servicekit's and each service's unit tests, no Docker needed
unit: $(VENV)/.installed
	cd servicekit && ../$(VENV)/bin/pytest -q
	for service in $(SERVICES); do (cd $$service && ../$(VENV)/bin/pytest -q) || exit 1; done

## integration: builds and starts its own stack (own project name, free port), tests it, tears it down
integration: $(VENV)/.installed
	cd tests && ../$(VENV)/bin/pytest -q

## bench: the scaling benchmark on its own copy of the stack (needs wrk); writes docs/bench.md and docs/bench.png
bench: $(VENV)/.installed
	cd tests && ../$(VENV)/bin/python bench.py

## bench-smoke: the benchmark in a short mode, only to prove it runs (CI); its figures mean little
bench-smoke: $(VENV)/.installed
	cd tests && ../$(VENV)/bin/python bench.py --seconds 2 --out "$$(mktemp -d)"

## drill: a rolling deploy under load and a fault drill on its own copy of the stack; prints the figures
drill: $(VENV)/.installed
	cd tests && ../$(VENV)/bin/python drill.py

## base-images: build the python and nginx base images from Debian packages (no registry needed)
base-images:
	@scripts/base-images.sh

## venv: the host's Python environment for the tests
venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt tests/requirements.txt servicekit/pyproject.toml $(wildcard service*/requirements.txt)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## clean: remove the host's test environment
clean:
	rm -rf $(VENV)
