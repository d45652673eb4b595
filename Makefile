# Sankshep: the two jobs a user runs, and what they need.
#   make run    the whole pipeline on the bundled data with the built-in small presets
#   make test   the test suite
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := libopenblas-dev libffi-dev
# Open MPI: the `mpi` communicator plugin (--distributed mpi) is built against it, and its tests run mpirun.
SYSTEM_PACKAGES += openmpi-bin libopenmpi-dev

.PHONY: deps python build run test bench clean

# Install the Debian packages the build links against, only when one is missing.
deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

run: build
	.build/release/sankshep run --pipeline baseline_kd_prune_quant --quant_method int4 --output_dir outputs

# The Python peers the tests check against (transformers, compressed-tensors, an MLflow server),
# in a virtualenv of the checkout's own; the product itself never imports Python.
python:
	bash scripts/setup_python.sh .venv

test: deps python
	SANKSHEP_PYTHON=$(CURDIR)/.venv/bin/python $(SWIFT) test

clean:
	rm -rf .build
