# Kaelix build, test and benchmark entry points. See README.md.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
PKGS      := ./...
FUZZTIME  ?= 10s

.PHONY: all build test test-short vet staticcheck setup bench bench-report bench-ring fuzz fuzz-short run clean soak soak-short
SOAK_DURATION ?= 10m
CHURN_DURATION ?= 10m
CRASH_ROUNDS  ?= 100

all: build

# Every binary's --version names the commit it was built from, stamped here
# too, since GOFLAGS=-buildvcs=false (or a tree the toolchain cannot read)
# leaves the toolchain's own stamp out (internal/version).
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DIRTY     ?= $(shell test -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo true)
LDFLAGS   := -X github.com/kaelix-io/kaelix/internal/version.commit=$(COMMIT) -X github.com/kaelix-io/kaelix/internal/version.dirty=$(DIRTY)

build:
	$(GO) build $(PKGS)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

# setup installs what the tests need on a fresh machine: Go modules and the
# staticcheck linter. Idempotent; it reserves no huge pages.
setup:
	./scripts/setup.sh

vet:
	$(GO) vet $(PKGS)

staticcheck: setup
	$(STATICCHECK) $(PKGS)

# test: vet, staticcheck, the race-enabled suite (cross-process tests re-exec
# the test binary), then a short run of every fuzz target over its corpus.
# As root, scripts/with-hugepages.sh reserves 2 MiB huge pages (and mounts
# hugetlbfs) for the suite only and puts the host back as it was at the
# end, also when a test fails or the run is interrupted.
test: setup vet staticcheck
	./scripts/with-hugepages.sh sh -c '$(GO) test -race -count=1 -timeout 30m $(PKGS) && $(MAKE) fuzz-short'

test-short:
	$(GO) test -short -count=1 $(PKGS)

# fuzz-short runs each fuzz target briefly; fuzz runs them for FUZZTIME.
fuzz-short:
	./scripts/fuzz.sh 5s

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# soak: the crash matrix CRASH_ROUNDS (100) times per case, then a mixed-load
# soak with random kills and restarts of every role for SOAK_DURATION, then
# the client churn soak for CHURN_DURATION (50 processes attaching and
# detaching 1,000 times a minute over 64 topics x 4 partitions, killed and
# stopped at random: kaelixd's descriptors, goroutines and region files must
# end where they started, no slot may leak, every subscriber must receive).
# scripts/soak.sh prints the tables; non-zero exit on any broken invariant.
# make test runs each crash case 5 times; soak-short is the CI soak.
soak:
	KAELIX_CRASH_ROUNDS=$(CRASH_ROUNDS) $(GO) test -count=1 -timeout 60m -run '^TestCrash' -v ./internal/soak
	./scripts/soak.sh $(SOAK_DURATION)
	./scripts/soak.sh $(CHURN_DURATION) -churn

soak-short:
	./scripts/soak.sh 2m
	./scripts/soak.sh 1m -churn

bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

# bench-report runs kaelix-bench's standard suite (a few minutes) into
# bench/results/<date>-<host>/ and regenerates README.md's benchmark table.
bench-report:
	GO=$(GO) ./scripts/bench.sh

# run: the main job (scripts/run.sh): kaelixd on a temporary socket, topic
# host.telemetry, a /proc sampler publishing at 20 Hz and a subscriber
# printing live. Ctrl-C stops it; RUN_SECONDS=N stops it after N seconds.
run: build
	KAELIX_BIN=$(CURDIR)/bin ./scripts/run.sh

clean:
	rm -rf bin
