# Thin targets over docker compose, pytest and the project's programs: scripts/ (what a learner runs), swarm/ and
# lab/ (Swarm, the three-node lab), measure/ (bench, drill, sizes, variants). README.md uses exactly these.
SHELL := /bin/bash
SERVICES := $(patsubst %/config/settings.py,%,$(wildcard */config/settings.py))
# Two Python environments on the host: the tools' (make venv: scale, load, deploy, swarm-*), small, and the
# development one (make dev: tests, lint, bench, drill), which every target that needs it makes first.
VENV := .venv
TOOLS := .venv-tools
PYTHON ?= python3
# DB=postgres gives each service a PostgreSQL server of its own (docker-compose.postgres.yml) in everything below
# that runs the stack; DB=sqlite (the default) keeps each service on SQLite in its volume. `make test` without DB
# runs the tests on SQLite (make test-all: on every kind of stack).
# On engines with the healthcheck's start_interval (Docker 25 and later), the commands below also add
# docker-compose.start-interval.yml: checks every second while a container starts, every 30 s or more after (each
# service its own interval, so that their checks do not fall together). Not when
# COMPOSE_FILE is already chosen (here or in .env): that choice stands.
start_interval_file = $(if $(shell scripts/engine-has-start-interval.sh && echo yes),:docker-compose.start-interval.yml)
ifeq ($(DB),postgres)
export COMPOSE_FILE := docker-compose.yml:docker-compose.postgres.yml$(start_interval_file)
else ifneq ($(filter-out sqlite,$(DB)),)
$(error DB=$(DB): choose sqlite or postgres)
else ifeq ($(origin COMPOSE_FILE)$(shell grep -qs '^COMPOSE_FILE=' .env && echo ' in .env'),undefined)
ifneq ($(start_interval_file),)
export COMPOSE_FILE := docker-compose.yml$(start_interval_file)
endif
endif
export DB
# METRICS=1 adds a Prometheus that scrapes the stack (docker-compose.yml's profile metrics), its UI on 127.0.0.1.
ifneq ($(filter-out 0 false no off,$(METRICS)),)
export COMPOSE_PROFILES := $(if $(COMPOSE_PROFILES),$(COMPOSE_PROFILES)$(comma))metrics
endif
comma := ,

.DEFAULT_GOAL := help
.PHONY: help lock up down logs deploy scale autoscale load backup restore reconcile lint test test-set-up test-all unit unit-tests integration test-swarm swarm-up swarm-down swarm-deploy \
	cluster-up cluster-down test-cluster test-fresh-machine cluster-drill drill-autoscale bench bench-smoke sizes drill variants \
	base-images venv dev clean

## help: this list: every target, with what it does (the `## target:` lines of this file)
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(MAKEFILE_LIST) | expand -t 16

## up: set up what is missing (an engine, Compose, base images), then build and start the stack until healthy
# The set-up runs where the machine lets make install (root on Debian); elsewhere preflight.py says what to do.
up:
	@$(PYTHON) scripts/preflight.py
	@scripts/build-images.sh
	docker compose up --detach --wait || { $(PYTHON) scripts/preflight.py --why-not-up; exit 1; }

## down: stop the stack, whichever variant started it (add V=1 to delete every volume of the project too)
# Every container and network with the project's label goes, whichever Compose files made it (scripts/down.py).
down: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/down.py $(if $(V),--volumes)

## logs: follow the logs, readably, of every container or one service (SERVICE=service2); raw JSON: docker compose logs
logs:
	docker compose logs --follow --no-log-prefix $(SERVICE) | $(PYTHON) scripts/readable-logs.py

## deploy: roll one service to its new image without touching the others (SERVICE=service2), or reload nginx
# Its migrations are checked in its new image (servicekit's check_migrations), before any replica runs it.
deploy: $(TOOLS)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make deploy SERVICE=<service1..service4|nginx>"; exit 2; }
	$(TOOLS)/bin/python scripts/deploy.py $(SERVICE)

## scale: replicas and workers of one service, kept in .env (SERVICE=service1 REPLICAS=3 PROCESSES=4 THREADS=2)
scale: $(TOOLS)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make scale SERVICE=<service1..service4> [REPLICAS=n] [PROCESSES=n] [THREADS=n]"; exit 2; }
	$(TOOLS)/bin/python scripts/scale.py $(SERVICE) $(if $(REPLICAS),--replicas $(REPLICAS)) \
	  $(if $(PROCESSES),--processes $(PROCESSES)) $(if $(THREADS),--threads $(THREADS))

## autoscale: scale one service's replicas on Prometheus's figures (SERVICE=service1 MIN=1 MAX=4; with METRICS=1; SWARM=1: Swarm's)
autoscale: $(TOOLS)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make autoscale SERVICE=<service1..service4> [MIN=1] [MAX=4] [SWARM=1]"; exit 2; }
	$(TOOLS)/bin/python scripts/autoscale.py $(SERVICE) --min $(or $(MIN),1) --max $(or $(MAX),4) $(if $(SWARM),--swarm)

## load: bounded load on one service through the gateway, to watch /status/ (SERVICE=service1 RATE=50 SECONDS=60 NO_RETRY=1)
load: $(TOOLS)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make load SERVICE=<service1..service4> [RATE=50] [SECONDS=60] [NO_RETRY=1]"; exit 2; }
	$(TOOLS)/bin/python scripts/load.py $(SERVICE) --rate $(or $(RATE),50) --seconds $(or $(SECONDS),60) $(if $(NO_RETRY),--no-retry)

## backup: a consistent copy of each service's database, under load, into backups/<UTC time>/ (SERVICE=service3: one)
backup: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/backup.py backup $(SERVICE)

## restore: put a backup back into its stopped service and start it, migrated forward (FROM=backups/<time> [SERVICE=…])
restore: $(TOOLS)/.installed
	@test -n "$(FROM)" || { echo "usage: make restore FROM=backups/<time> [SERVICE=<service1..service4>]"; exit 2; }
	$(TOOLS)/bin/python scripts/backup.py restore $(SERVICE) --from $(FROM)

## reconcile: the catalog's reservations against the orders after a restore of one (RELEASE=1: release the orphans)
reconcile: $(TOOLS)/.installed
	$(TOOLS)/bin/python scripts/backup.py reconcile $(if $(RELEASE),--release)

## swarm-up: the same images on Docker Swarm (a single-node swarm if the engine is in none), stack microstack; METRICS=1: Prometheus too
swarm-up: $(TOOLS)/.installed
	$(TOOLS)/bin/python swarm/swarm.py up

## swarm-down: remove the stack (V=1 deletes its volumes too); leave the swarm only if swarm-up made it
swarm-down: $(TOOLS)/.installed
	$(TOOLS)/bin/python swarm/swarm.py down $(if $(V),--volumes)

## swarm-deploy: roll one service of the swarm stack to its new image (SERVICE=service2); rolled back if unhealthy
swarm-deploy: $(TOOLS)/.installed
	@test -n "$(SERVICE)" || { echo "usage: make swarm-deploy SERVICE=<service1..service4|nginx>"; exit 2; }
	$(TOOLS)/bin/python swarm/swarm.py deploy $(SERVICE)

## cluster-up: a three-node swarm lab on this machine (engines in containers, a registry), the stack on it; port 8090
cluster-up: $(TOOLS)/.installed
	$(TOOLS)/bin/python lab/cluster.py up

## cluster-down: remove the lab: its engines with all they ran, its registry, network, volumes and pushed images
cluster-down: $(TOOLS)/.installed
	$(TOOLS)/bin/python lab/cluster.py down

## lint: every linter, zero findings; each exception is written next to what it excuses, with its reason
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -r servicekit/servicekit status $(SERVICES) -x '*/tests/*,*/migrations/*,servicekit/servicekit_testing/*'
	$(VENV)/bin/hadolint servicekit/Dockerfile nginx/Dockerfile database/Dockerfile prometheus/Dockerfile base/*.Dockerfile \
	  lab/*.Dockerfile
	# The stack with every override merged: each service, the gateway with TLS, each database, the bench's rows,
	# Prometheus.
	merged=$$(mktemp --suffix=.yml) && GATEWAY_TLS_CERT=/dev/null GATEWAY_TLS_KEY=/dev/null COMPOSE_FILE= \
	  docker compose -f docker-compose.yml -f docker-compose.tls.yml -f docker-compose.postgres.yml \
	    -f docker-compose.bench.yml -f docker-compose.start-interval.yml --profile bench-rows --profile metrics \
	    config >"$$merged" \
	  && $(VENV)/bin/compose-lint check --quiet --strict-config --fail-on low "$$merged"; \
	  status=$$?; rm -f "$$merged"; exit $$status
	docker stack config --compose-file swarm/docker-stack.yml --compose-file swarm/docker-stack.metrics.yml >/dev/null
	GIXY=$(VENV)/bin/gixy .ci/lint-nginx.sh
	.ci/lint-prometheus.sh
	$(VENV)/bin/python .ci/check-locks.py
	# Every migration one the release before it can run against, or saying why it may not (docs/adr/0006).
	$(VENV)/bin/python scripts/check-migrations.py
	# Types, one folder at a time (every service has a package named config), all folders at once.
	@pids=(); \
	(cd servicekit && ../$(VENV)/bin/mypy --config-file ../mypy.ini servicekit servicekit_testing) & pids+=($$!); \
	(cd status && MYPYPATH=../servicekit ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	for service in $(SERVICES); do \
	  (cd $$service && MYPYPATH=../servicekit ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	done; \
	(cd scripts && ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	(cd swarm && MYPYPATH=../scripts ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	(cd lab && MYPYPATH=../scripts:../swarm ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	(cd tests && MYPYPATH=support:../scripts:../swarm:../lab ../$(VENV)/bin/mypy --config-file ../mypy.ini .) & pids+=($$!); \
	(cd measure && MYPYPATH=../scripts:../tests/support:../swarm:../lab ../$(VENV)/bin/mypy --config-file ../mypy.ini .) \
	  & pids+=($$!); \
	status=0; for pid in "$${pids[@]}"; do wait "$$pid" || status=1; done; exit "$$status"

## test: the unit and integration tests on SQLite, the default (DB=postgres: on PostgreSQL); make test-all: all
# What the tests need is set up first, where this machine lets make (root on Debian), or named before anything
# starts: an engine and the base images (preflight.py --set-up), Chromium, its driver and wrk (test-tools.sh),
# the development environment. The unit tests run while the integration suite's first stack comes up: one line
# says how they ended as soon as they do, their output follows the suite's. The development environment is made
# (or brought up to date) first: both would make it at once otherwise.
test: test-set-up $(VENV)/.installed
	@unit_log=$$(mktemp) && trap 'rm -f "$$unit_log"' EXIT; \
	{ $(MAKE) --no-print-directory unit DB=$(or $(DB),sqlite) >"$$unit_log" 2>&1 \
	  && printf "\ntest: the unit tests passed (their output follows the integration suite's)\n" \
	  || { printf "\ntest: the unit tests FAILED (their output follows the integration suite's)\n"; exit 1; }; } & unit=$$!; \
	$(MAKE) --no-print-directory integration DB=$(or $(DB),sqlite); integration=$$?; \
	wait "$$unit"; unit_status=$$?; cat "$$unit_log"; \
	[[ $$unit_status == 0 && $$integration == 0 ]] || { echo "test: FAILED on $(or $(DB),sqlite)"; exit 1; }
	@echo "test: passed on $(or $(DB),sqlite). Each variant: make test DB=sqlite|postgres, make test-swarm," \
	  "make test-cluster; all of them: make test-all"

test-set-up:
	@$(PYTHON) scripts/preflight.py --set-up
	@scripts/test-tools.sh

## test-all: every test, on each kind of stack: SQLite, PostgreSQL, Swarm, the three-node lab, a fresh machine (what CI runs)
# Each variant says how long it took, so the times can be compared run to run. Swarm and the fresh machine run
# beside the lab: the lab mostly waits (on its engines loading images, on a node to be found lost), the fresh
# machine mostly installs and downloads (Debian's mirror, PyPI), and none judges a time; their output follows.
test-all: test-set-up
	@SECONDS=0 && $(MAKE) --no-print-directory test DB=sqlite && echo "test-all: SQLite (make test) in $$SECONDS s"
	@SECONDS=0 && $(MAKE) --no-print-directory test DB=postgres && echo "test-all: PostgreSQL in $$SECONDS s"
	@swarm_log=$$(mktemp) && fresh_log=$$(mktemp) && trap 'rm -f "$$swarm_log" "$$fresh_log"' EXIT; \
	{ SECONDS=0; $(MAKE) --no-print-directory test-swarm >"$$swarm_log" 2>&1 \
	  && echo "test-all: Swarm in $$SECONDS s (beside the lab)" >>"$$swarm_log"; } & swarm=$$!; \
	{ SECONDS=0; $(MAKE) --no-print-directory test-fresh-machine >"$$fresh_log" 2>&1 \
	  && echo "test-all: a fresh machine in $$SECONDS s (beside the lab)" >>"$$fresh_log"; } & fresh=$$!; \
	SECONDS=0; $(MAKE) --no-print-directory test-cluster && echo "test-all: the three-node lab in $$SECONDS s"; \
	lab=$$?; wait "$$swarm"; swarm_status=$$?; wait "$$fresh"; fresh_status=$$?; cat "$$swarm_log" "$$fresh_log"; \
	[ "$$lab" -eq 0 ] && [ "$$swarm_status" -eq 0 ] && [ "$$fresh_status" -eq 0 ]

## unit: servicekit's, the status page's, the tools' and each service's unit tests, no Docker needed (DB=postgres: on a throwaway PostgreSQL)
unit: $(VENV)/.installed
	$(if $(filter postgres,$(DB)),tests/support/with-postgres.sh) $(MAKE) --no-print-directory unit-tests

unit-tests:
	cd servicekit && ../$(VENV)/bin/pytest -q
	cd status && ../$(VENV)/bin/pytest -q
	cd measure && ../$(VENV)/bin/pytest -q
	cd scripts && ../$(VENV)/bin/pytest -q
	for service in $(SERVICES); do (cd $$service && ../$(VENV)/bin/pytest -q) || exit 1; done

## integration: builds and starts its own stacks (own project names, locked ports), tests them, tears them down
# Two halves side by side, each a pytest of its own: the shared stack's modules, and the groups that break their
# own stacks (tests/conftest.py --groups). Alone, the suite waits on its stacks a third of the time.
integration: $(VENV)/.installed
	@own_log=$$(mktemp) && trap 'rm -f "$$own_log"' EXIT; \
	(cd tests && ../$(VENV)/bin/pytest -q --durations=8 --groups=own >"$$own_log" 2>&1) & own=$$!; \
	echo "integration: the shared stack's modules (the groups with stacks of their own run beside them; their" \
	  "output follows)"; \
	(cd tests && ../$(VENV)/bin/pytest -q --durations=8 --groups=shared); shared=$$?; \
	wait "$$own"; own_status=$$?; echo "integration: the groups with stacks of their own"; cat "$$own_log"; \
	[[ $$shared == 0 && $$own_status == 0 ]]

## test-swarm: the HTTP contract, scaling, rolling updates and replacement of killed tasks, on its own swarm stack
test-swarm: $(VENV)/.installed
	cd tests && STACK=swarm ../$(VENV)/bin/pytest -q --durations=8 $(SWARM_TESTS)

## test-cluster: the HTTP contract and the cluster's faults under load (tests/test_cluster.py) on a lab of its own
test-cluster: $(VENV)/.installed
	cd tests && STACK=cluster ../$(VENV)/bin/pytest -q --durations=8 $(CLUSTER_TESTS)

## test-fresh-machine: the README's set-up on a fresh machine (a container: Debian, git, make, python3): make up alone
test-fresh-machine: $(VENV)/.installed
	cd tests && STACK=machine ../$(VENV)/bin/pytest -q test_fresh_machine.py

## cluster-drill: faults on a lab of its own, under load, measured; writes docs/cluster.md
cluster-drill: $(VENV)/.installed
	$(VENV)/bin/python measure/cluster_drill.py

## bench: the scaling benchmark on its own copy of the stack (needs wrk); writes docs/bench.md and docs/bench.png
bench: $(VENV)/.installed
	$(VENV)/bin/python measure/bench.py

## bench-business: the business path's rows alone (reads, a hop, orders), 3 rounds, printed: a quick look
bench-business: $(VENV)/.installed
	$(VENV)/bin/python measure/bench.py --business

## bench-smoke: the benchmark in a short mode, only to prove it runs (CI); its figures mean little
bench-smoke: $(VENV)/.installed
	$(VENV)/bin/python measure/bench.py --smoke --seconds 1 --out "$$(mktemp -d)"

## sizes: image sizes, start time, idle CPU, a one-service rebuild and what Prometheus costs, on its own copy of the stack; docs/sizes.md
sizes: $(VENV)/.installed
	$(VENV)/bin/python measure/sizes.py

## drill: a rolling deploy under load and a fault drill on its own copy of the stack; writes docs/drill.md (ONLY=part: that part, printed)
drill: $(VENV)/.installed
	$(VENV)/bin/python measure/drill.py $(if $(ONLY),--only $(ONLY))

## drill-autoscale: make autoscale under a step load of logins, on its own stack; writes docs/autoscale.md and .png
drill-autoscale: $(VENV)/.installed
	$(VENV)/bin/python measure/autoscale_drill.py

## variants: time to healthy, a rolling update under load and a new replica's first request: SQLite, PostgreSQL, Swarm
variants: $(VENV)/.installed
	$(VENV)/bin/python measure/variants.py

## base-images: build the base images (Python, nginx, PostgreSQL, Prometheus) from Debian packages: no registry needed
base-images:
	@scripts/base-images.sh

## venv: the tools' Python environment (scale, load, deploy, swarm-*): scripts/requirements.lock, hash-checked
venv: $(TOOLS)/.installed

# Debian's Python has its venv module in a package of its own (python3-venv).
has_venv = $(PYTHON) -c "import ensurepip" 2>/dev/null || scripts/install-packages.sh "a Python environment" python3-venv

$(TOOLS)/.installed: scripts/requirements.lock
	@echo "venv: installing the tools' environment into $(TOOLS)"
	@$(has_venv)
	@SECONDS=0 && $(PYTHON) -m venv $(TOOLS) \
	  && $(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r scripts/requirements.lock \
	  && touch $@ && echo "venv: ready in $$SECONDS s"

## dev: the development environment (tests, lint, bench, drill): requirements-dev.lock, hash-checked, and servicekit
dev: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.lock servicekit/pyproject.toml
	@$(has_venv)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ./servicekit
	touch $@

# pip-compile's options for both locks: every distribution's hash, setuptools included, no index of this machine.
LOCK := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
	--no-emit-index-url --no-emit-find-links

## lock: lock every dependency with hashes: servicekit/requirements.lock (images), requirements-dev.lock, scripts/, the bench's
lock: $(VENV)/.installed
	$(LOCK) --extra server --extra postgres --output-file servicekit/requirements.lock servicekit/pyproject.toml \
	  servicekit/build-requirements.txt $(SERVICES:%=%/requirements.txt) status/requirements.txt
	$(LOCK) --extra postgres --output-file requirements-dev.lock servicekit/pyproject.toml \
	  $(SERVICES:%=%/requirements.txt) status/requirements.txt requirements-dev.txt
	$(LOCK) --output-file scripts/requirements.lock scripts/requirements.txt
	$(LOCK) --output-file servicekit/bench-requirements.lock servicekit/bench-requirements.txt

## clean: remove the host's Python environments (development and tools)
clean:
	rm -rf $(VENV) $(TOOLS)
