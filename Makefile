# Kaelix build, test and benchmark entry points. See README.md.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
PKGS      := ./...
FUZZTIME  ?= 10s

.PHONY: install uninstall
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

# install: the operator binaries, the systemd unit (packaging/kaelixd.service,
# its ExecStart pointed at BINDIR), the example configuration and the shell
# completions, under DESTDIR$(PREFIX) (default /usr/local; a package build
# sets DESTDIR=staging PREFIX=/usr). Creates no user and enables nothing:
# see the unit file's header and README.md, "Running as a service".
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
UNITDIR   ?= $(PREFIX)/lib/systemd/system
SHAREDIR  ?= $(PREFIX)/share
INSTALL_BINS := kaelixd kaelixctl kaelix-proc kaelix-bridge

install: build
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SHAREDIR)/kaelix" \
		"$(DESTDIR)$(SHAREDIR)/bash-completion/completions" "$(DESTDIR)$(SHAREDIR)/zsh/site-functions" \
		"$(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d"
	install -m 0755 $(addprefix bin/,$(INSTALL_BINS)) "$(DESTDIR)$(BINDIR)/"
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/kaelixd.service > "$(DESTDIR)$(UNITDIR)/kaelixd.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/kaelixd.service"
	install -m 0644 configs/kaelixd.example.toml "$(DESTDIR)$(SHAREDIR)/kaelix/kaelixd.example.toml"
	bin/kaelixctl completion bash > "$(DESTDIR)$(SHAREDIR)/bash-completion/completions/kaelixctl"
	bin/kaelixctl completion zsh > "$(DESTDIR)$(SHAREDIR)/zsh/site-functions/_kaelixctl"
	bin/kaelixctl completion fish > "$(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/kaelixctl.fish"

uninstall:
	rm -f $(addprefix "$(DESTDIR)$(BINDIR)/,$(addsuffix ",$(INSTALL_BINS))) "$(DESTDIR)$(UNITDIR)/kaelixd.service" \
		"$(DESTDIR)$(SHAREDIR)/kaelix/kaelixd.example.toml" "$(DESTDIR)$(SHAREDIR)/bash-completion/completions/kaelixctl" \
		"$(DESTDIR)$(SHAREDIR)/zsh/site-functions/_kaelixctl" "$(DESTDIR)$(SHAREDIR)/fish/vendor_completions.d/kaelixctl.fish"
	-rmdir "$(DESTDIR)$(SHAREDIR)/kaelix" 2>/dev/null

# setup installs what the tests need on a fresh machine: Go modules, the
# staticcheck linter, and zsh and fish unpacked into .cache/shells for the
# completion tests (scripts/shells.sh; installs nothing on the host). Idempotent; it reserves no huge pages.
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
	./scripts/soak.sh $(CHURN_DURATION) --churn

soak-short:
	./scripts/soak.sh 2m
	./scripts/soak.sh 1m --churn

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
