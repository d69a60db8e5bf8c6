# Tether: `make demo` and `make test` install what they need and reuse what is built.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := pass gnupg git openssl postgresql
PYTEST_ARGS ?=
# Test files run on this many pytest-xdist workers, sharing the session devcluster (1: one process).
PYTEST_WORKERS ?= 2
# make bench QUICK=1: N=100 only and fewer repetitions (under 5 minutes); BENCH_ARGS: more flags for `python -m bench`.
QUICK ?=
BENCH_ARGS ?=

.PHONY: install deps venv tools devcluster-build lint test demo demo-down clean bench

install: deps venv tools devcluster-build

deps:
	@missing=""; for cmd in pass gpg git openssl; do command -v $$cmd >/dev/null || missing=1; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages: $(APT_PACKAGES)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@command -v go >/dev/null || { echo "Go >= 1.26 is required to build the devcluster"; exit 1; }

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

tools: venv
	$(BIN)/python hack/install_tools.py $(BIN)

devcluster-build: venv
	$(BIN)/python -m tether.devcluster.build

lint: venv
	$(BIN)/ruff check src tests hack bench
	$(BIN)/ruff format --check src tests hack bench
	$(BIN)/mypy

test: install lint
	@set +e; $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure"; exit 1; fi; exit $$rc

bench: install
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

demo: install
	$(BIN)/python -m tether.devcluster.demo --name demo $(DEMO_ARGS)

demo-down: venv
	$(BIN)/tether devcluster down --name demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
