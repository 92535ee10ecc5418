# nsrun — set-up, demo, tests, lint and benchmark. Every target installs what it needs on a
# fresh Debian 12 machine (run as root): Debian packages when missing, a .venv, and nsrun in
# editable "compat" mode (a plain .pth: no import hook on the start path).

# Debian's interpreter starts in ~8 ms, a pyenv build here in ~18–40 ms: the start path pays it.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST := $(VENV)/bin/pytest
STAMP := $(VENV)/.nsrun-installed
DEB_PACKAGES := busybox-static python3-dev python3-venv iproute2 nftables
# real clients and reference runtimes driven by the integration tests (nsrun-oci, issue 13)
TEST_PACKAGES := podman containerd runc crun
BENCH_PACKAGES := runc crun hyperfine strace
PYTEST_ARGS ?=

PREFIX ?= /usr/local

.PHONY: all setup install deps demo test test-host test-unit test-integration test-faults lint bench clean

all: setup

# Debian packages: installed only when one is missing (apt-get update once first).
deps:
	@missing=""; for p in $(DEB_PACKAGES) $(TEST_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq -o DPkg::Lock::Timeout=600 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml setup.py csrc/*.c csrc/*.h csrc/build_ffi.py | deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=77" wheel "cffi>=2.0"
	$(PIP) install -q --no-build-isolation --config-settings editable_mode=compat -e '.[dev]'
	$(PY) -m compileall -q nsrun
	touch $@

setup: deps $(STAMP)

# nsrun and nsrun-oci on PATH: symlinks to this checkout's .venv (its interpreter and code).
install: setup
	install -d $(PREFIX)/bin
	ln -sfn $(abspath $(VENV))/bin/nsrun $(PREFIX)/bin/nsrun
	ln -sfn $(abspath $(VENV))/bin/nsrun-oci $(PREFIX)/bin/nsrun-oci

demo: setup
	bash examples/demo.sh

test: test-host test-vm

test-host: setup
	$(PYTEST) -q -rs $(PYTEST_ARGS) tests/unit tests/integration tests/vm

test-unit: setup
	$(PYTEST) -q $(PYTEST_ARGS) tests/unit

test-integration: setup
	$(PYTEST) -q -rs $(PYTEST_ARGS) tests/integration

# The supervisor SIGKILLed at 100 random moments, then recovered (make test runs 15 of them).
test-faults: setup
	NSRUN_FAULTS=100 $(PYTEST) -q -rs $(PYTEST_ARGS) tests/integration/test_faults.py

lint: setup
	$(VENV)/bin/ruff check nsrun tests bench csrc/build_ffi.py

bench: setup
	$(MAKE) deps DEB_PACKAGES="$(DEB_PACKAGES) $(BENCH_PACKAGES)"
	$(PY) -m compileall -q nsrun  # bytecode even where PYTHONDONTWRITEBYTECODE is set
	$(PY) bench/bench.py

clean:
	rm -rf build *.egg-info nsrun/_native*.so nsrun/_native.c nsrun/nsrun-monitor .pytest_cache

VM_SETUP := setup
include mk/vm.mk
