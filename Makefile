# Sankshep: the two jobs a user runs, and what they need.
#   make run    the whole pipeline on the bundled data with the built-in small presets
#   make test   the test suite
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := libopenblas-dev libffi-dev

.PHONY: deps build run test bench clean

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

test: deps
	$(SWIFT) test

clean:
	rm -rf .build
