# Entry points. The two everyday commands are `make bench` and `make test`; both run the
# idempotent set-up first (Debian BLAS packages + the default model, see scripts/setup.sh).
SWIFT ?= swift

.PHONY: setup build test bench clean

setup:
	bash scripts/setup.sh

build:
	$(SWIFT) build -c release

# Tests run optimised (-c release): the real-model parity tests take minutes in a debug build.
# -enable-testing keeps @testable imports working; preconditions stay on in release builds.
test: setup
	$(SWIFT) test -c release -Xswiftc -enable-testing

bench: setup
	$(SWIFT) run -c release bench

# Build products only; the downloaded model (models/) is kept.
clean:
	rm -rf .build
