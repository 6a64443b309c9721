# The set-up commands of the README: `make demo` and `make test` (plus `make test-slow`, the
# slow group that `make test` leaves out; CI runs both). All install first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-slow lint bench clean

install:
	bash scripts/install.sh

demo: install
	$(VENV)/bin/rtsep demo

test: install
	bash scripts/run_tests.sh

test-slow: install
	bash scripts/run_tests.sh --slow

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(VENV)/bin/rtsep bench latency

clean:
	rm -rf out build *.egg-info .pytest_cache .ruff_cache rtsep-demo
