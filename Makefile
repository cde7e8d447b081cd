# ring-bridge: the two commands are `make run` and `make test`.
CARGO ?= cargo
ARGS ?=

.PHONY: run test setup setup-test build release addon lint fmt clean

## Build and run the daemon (demo mode on the built-in simulator without a Ring token).
## It listens on 127.0.0.1 unless LISTEN_IP is set (then set HTTP_PASSWORD too).
run: setup
	LISTEN_IP=$${LISTEN_IP:-127.0.0.1} $(CARGO) run --bin ring-bridge -- run $(ARGS)

## Set up (system packages, the pinned browser test driver in tests/browser), then
## check formatting and run the whole test suite.
## (`make lint` adds clippy; it re-checks every dependency, so it is kept out of
## the CI path to keep the suite well under 20 minutes on 2 cores.)
test: setup-test
	$(CARGO) fmt --check
	$(CARGO) test --all-targets --no-fail-fast -- --test-threads=2

setup:
	@bash scripts/setup-deps.sh build

setup-test:
	@bash scripts/setup-deps.sh test

build: setup
	$(CARGO) build

release: setup
	$(CARGO) build --release

## The installable Home Assistant add-on folder (addon/ + the sources its
## Dockerfile builds): copy $(ADDON_OUT) to the Supervisor's /addons share.
ADDON_OUT ?= target/addon/ring_bridge
addon:
	bash scripts/pack-addon.sh $(ADDON_OUT)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
