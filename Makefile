# The README's two commands are `make demo` and `make test`; everything else is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LINT_DIRS := $(wildcard provision tests bench hil scripts)

.PHONY: demo test lint bench soak fuzz fuzz-py firmware stub-test hil deps vectors clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# System packages for the QEMU, fuzz, SoftHSM2 and PostgreSQL tiers (skipped, with a
# message, when they cannot be installed).
deps:
	@bash .ci/install-system-deps.sh

demo: $(STAMP)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy

test: $(STAMP) deps lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest -m "not soak" -q -n 2 --dist loadfile

soak: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest -m soak -q

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) $$b || exit 1; done

firmware:
	$(MAKE) -C firmware_stub

stub-test:
	$(MAKE) -C firmware_stub test

vectors: $(STAMP)
	$(PY) tests/vectors/make_bundle_vectors.py
	$(PY) tests/vectors/gen_frames.py

fuzz:
	$(MAKE) -C firmware_stub fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-60}

# Long Hypothesis run over every parser of untrusted input (the default tests run a bounded
# one): FUZZ_EXAMPLES inputs per parser.
fuzz-py: $(STAMP)
	PROVISION_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(VENV)/bin/pytest tests/hostile/test_parser_fuzz.py -q -p no:cacheprovider

# make hil [BOARD=mps2|microbit]: the conformance suite on the stub under QEMU.
hil: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash hil/run-qemu --board $${BOARD:-mps2}

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	-$(MAKE) -C firmware_stub clean
