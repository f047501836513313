# Two entry points for a fresh machine (see README.md):
#   make demo   set up .venv and run the real loop on the built-in simulated fleet (no credentials, no network)
#   make test   set up .venv and run every test, offline, with coverage
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup bench clean

$(STAMP): pyproject.toml plugins/taskcluster/pyproject.toml plugins/lambdatest/pyproject.toml plugins/bitbar/pyproject.toml examples/plugins/usbrack/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e plugins/taskcluster -e plugins/lambdatest -e plugins/bitbar -e examples/plugins/usbrack
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	rm -rf state/sim  # a fresh simulated cloud each time: forget the last demo's launches
	$(BIN)/provisioner check -c examples/sim.toml
	$(BIN)/provisioner run -c examples/sim.toml --duration 40

test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered -p no:cacheprovider

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) state .coverage
