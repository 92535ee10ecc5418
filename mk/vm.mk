# mk/vm.mk - nsrun's VM test ring (docs/vm.md).
#
# Included by the main Makefile (`include mk/vm.mk`), or used on its own:
#   make -f mk/vm.mk test-vm
#
# test-vm boots a throw-away guest kernel with a pure cgroup v2 hierarchy
# (all controllers enabled at the root), runs pytest on $(VM_TESTS) inside it
# with the checkout shared read-write, and exits with pytest's status.
# Everything the host lacks (Debian packages, guest kernel, qemu/uml) is
# installed or downloaded on first use into $(VM_CACHE), under a lock.
#
# Knobs (make variables or environment):
#   VM_BACKEND=qemu|uml   qemu (default): Debian bookworm kernel under qemu
#                         TCG, 2 CPUs, all controllers incl. cpuset.
#                         uml: User-Mode Linux, ~2x faster, 1 CPU, no cpuset.
#   VM_TESTS              what pytest runs (default tests/vm); e.g.
#                         VM_TESTS="tests/vm tests/integration"
#   VM_PYTEST_ARGS        extra pytest arguments (e.g. -x -k memory -rs)
#   VM_PYTEST_PLUGINS     default -p no:hypothesispytest: importing hypothesis's
#                         pytest plugin costs ~10 s under qemu TCG; set it
#                         empty when the tests in the ring need the plugin
#   VM_SYSTEMD=1|0        1 (default): the host's own systemd is the guest's
#                         PID 1 (systemd-run, delegation); 0: a plain shell
#                         as PID 1, tests in the root cgroup, ~8 s faster
#   VM_CPUS, VM_MEM       guest size (qemu: default 2 CPUs; 2G)
#   VM_TIMEOUT            seconds before the guest is killed (exit 124)
#   VM_CACHE              download/build cache (default /var/cache/nsrun-vm)
#   VM_ARGS               extra vm/run-in-vm.sh options (e.g. -v)
#   VM_SETUP              the target that makes $(VENV) ready (default
#                         vm-venv); the main Makefile sets it to its own
#                         setup target before including this file

VENV ?= .venv
PY ?= $(VENV)/bin/python

# the checkout root, whether this file is included or used with -f
VM_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)

VM_BACKEND ?= qemu
VM_TESTS ?= tests/vm
VM_PYTEST_ARGS ?=
VM_PYTEST_PLUGINS ?= -p no:hypothesispytest
VM_SYSTEMD ?= 1
VM_CPUS ?= 2
VM_MEM ?= 2G
VM_TIMEOUT ?= 1500
VM_CACHE ?= /var/cache/nsrun-vm
VM_ARGS ?=
VM_SETUP ?= vm-venv

VM_RUN = cd $(VM_ROOT) && NSRUN_VM_CACHE=$(VM_CACHE) ./vm/run-in-vm.sh \
	--backend $(VM_BACKEND) --cpus $(VM_CPUS) --mem $(VM_MEM) --timeout $(VM_TIMEOUT) \
	$(if $(filter 1 yes true,$(VM_SYSTEMD)),--systemd) $(VM_ARGS)

.PHONY: test-vm vm-prepare vm-venv vm-provision

## test-vm: run $(VM_TESTS) inside a guest kernel with a pure cgroup v2 hierarchy
# In the guest, provision.sh's `check` step (the one Vagrant runs) reports
# the cgroup v2 / systemd situation first.
test-vm: $(VM_SETUP)
	$(VM_RUN) -- /bin/sh -c './vm/provision.sh check && exec "$$0" -m pytest "$$@"' \
		$(PY) -q $(VM_PYTEST_PLUGINS) $(VM_PYTEST_ARGS) $(VM_TESTS)

## vm-prepare: install/download everything test-vm needs, boot nothing (CI cache warm-up)
vm-prepare:
	$(VM_RUN) --prepare

## vm-venv: make sure $(VENV) has pytest (nsrun[dev] via `make setup` when possible)
vm-venv:
	@cd $(VM_ROOT) && VENV=$(VENV) ./vm/provision.sh venv-min

## vm-provision: the Debian packages nsrun's build and tests need (shared with Vagrant)
vm-provision:
	cd $(VM_ROOT) && ./vm/provision.sh packages
