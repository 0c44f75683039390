# Entry points. The two everyday commands are `make bench` and `make test`; both run the
# idempotent set-up first (Debian BLAS packages + the default model + the corpora in
# data/corpora/, see scripts/setup.sh).
SWIFT ?= swift

.PHONY: setup corpora corpora-full debdesc build test bench bench-full pipeline clean

setup:
	bash scripts/setup.sh

# Only the BEIR-style corpora from Debian packages (idempotent; see scripts/README.md).
corpora:
	python3 scripts/build_corpora.py

# Only the corpora of Debian package descriptions, data/corpora/debdesc/ (one per archive section
# + all/) and data/corpora/debdesc-lang/ (the same descriptions in 8 languages), parsed from apt's
# index files; --update fetches apt's description files first when they are missing (root or sudo).
debdesc:
	python3 scripts/build_debdesc.py --update

# Larger corpora for `bench --full` (the paper's regime: large index, few scored documents):
# 2,500 documents per corpus where the Debian sources allow (foldoc, vera, wordnet; jargon 2,219,
# devil 968; elements and the FAQs keep their size), into data/corpora-full/.
corpora-full:
	python3 scripts/build_corpora.py --size 2500 --out data/corpora-full

build:
	$(SWIFT) build -c release

# Tests run optimised (-c release): the real-model parity tests take minutes in a debug build.
# -enable-testing keeps @testable imports working; preconditions stay on in release builds.
# The tests are XCTest only, so the (empty) Swift Testing run is switched off.
# Then the cluster check: 2 local Dask workers score in 4 shards, one worker is killed, the merged
# file must equal a single run (scripts/test_cluster.py, under a minute).
test: setup
	$(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing
	python3 scripts/test_cluster.py

bench: setup
	$(SWIFT) run -c release bench

# Every retriever configuration on the large corpora (hours on 2 cores; see README).
bench-full: setup corpora-full
	$(SWIFT) run -c release bench --full

# score → calibrate → detect → evaluate on the default corpora (results/pipeline/).
pipeline: setup
	bash scripts/pipeline.sh

# Build products only; the downloaded model (models/) and the corpora (data/) are kept.
clean:
	rm -rf .build
