# The two commands of the README: `make run` and `make test`. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NATIVE_SOURCES := $(wildcard native/src/*.c native/include/*.h) native/build_native.py
NATIVE_STAMP := build/.native
DATA_DIR ?= ./var

.PHONY: run test test-fast test-random typecheck hil setup native deps-run deps-test clean bench image

run: setup deps-run
	GATEWAY_HW=$${GATEWAY_HW:-emulated} $(VENV)/bin/gateway run --data-dir $(DATA_DIR)

test: setup deps-test typecheck
	@bash .ci/pytest-run $(PY) $(PYTEST_ARGS)

# mypy on the packages listed in pyproject.toml ([tool.mypy] files); `make test` runs it first.
typecheck: setup
	$(PY) -m mypy

# The unit tests alone (no servers, no image, nothing marked slow): under a minute.
test-fast: setup
	@bash .ci/pytest-run $(PY) -q -m "not slow and not integration and not hil" --ignore=tests/image $(PYTEST_ARGS)

# The hardware-in-the-loop scenarios on the emulated rig (hil/README.md); `make test` runs them too.
hil: setup
	$(PY) hil/run --rig emulated

# Every test but the image's in a shuffled order (pytest-randomly; rerun one order with
# PYTEST_ARGS=--randomly-seed=N, the seed it printed).
test-random: setup deps-test
	@bash .ci/pytest-run $(PY) -p randomly --ignore=tests/image $(PYTEST_ARGS)

setup: $(STAMP) $(NATIVE_STAMP)

# The virtualenv with the package (editable) and its test extras.
$(STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel cffi
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	@touch $@

# Rebuild the C core in place whenever a C source or header changes.
$(NATIVE_STAMP): $(NATIVE_SOURCES) $(STAMP)
	$(PY) native/build_native.py
	@mkdir -p build && touch $@

native: $(NATIVE_STAMP)

# Debian packages; only as root (a developer without root installs them by hand).
deps-run:
	@bash .ci/apt-install deps/debian-run.txt

deps-test: deps-run
	@bash .ci/apt-install deps/debian-test.txt

# The SD-card image (as root): dist/edge-gateway-<version>-arm64.img.zst and its .sha256.
# The recipe is in image/ (see image/build-image.sh); slow stages are cached outside the tree.
image: setup
	@bash .ci/apt-install deps/debian-image.txt
	bash image/build-image.sh

bench: setup deps-test
	@bash .ci/apt-install deps/debian-bench.txt
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf build $(VENV) gateway/_native*.so *.egg-info
