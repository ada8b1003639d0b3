# The two set-up commands of the README: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: deps install lint typecheck unit pytest test demo bench bench-mapper clean

# System packages (Debian, as root): PostgreSQL 15 and MariaDB servers for the demo, the tests and the
# benchmarks (our fixtures start private instances; Debian's own service is stopped if the package starts it).
deps:
	@if { [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v mariadbd >/dev/null || ! command -v chromium >/dev/null; } && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			postgresql-15 postgresql-client-15 mariadb-server mariadb-client procps chromium; \
		service mariadb stop >/dev/null 2>&1 || true; fi

install: deps
	$(PIP) install -q -e '.[dev]'

lint:
	$(PYTHON) -m ruff check cdc mappers sinks tests bench scripts

typecheck:
	$(PYTHON) -m mypy

pytest:
	$(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: install lint typecheck pytest

demo: install
	$(PYTHON) -m scripts.demo

bench: install
	$(PYTHON) -m bench.pg_catchup
	$(PYTHON) -m bench.my_catchup
	$(PYTHON) -m bench.http_delivery

# The mapper benchmark on this machine's python3, then on Debian's own CPython package, which Debian
# builds with profile-guided and link-time optimisation, as the python:3.11-slim image of
# docker-compose.yml is built (pyenv's default build, this project's python3 here, has neither).
RELEASE_VENV ?= .venv-release
bench-mapper: install
	$(PYTHON) -m bench.mapper_eval
	@if [ ! -x $(RELEASE_VENV)/bin/pip ]; then \
		/usr/bin/python3 -m venv --clear $(RELEASE_VENV) 2>/dev/null || { \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv && \
			/usr/bin/python3 -m venv --clear $(RELEASE_VENV); } && $(RELEASE_VENV)/bin/pip install -q .; fi
	$(RELEASE_VENV)/bin/python -m bench.mapper_eval

clean:
	rm -rf .mypy_cache .ruff_cache build *.egg-info $(RELEASE_VENV)
