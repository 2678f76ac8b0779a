# The pinned MinIO server the tests and the demo run against. It is built
# from the Go module proxy into .tools/bin (git-ignored), never into PATH.
MINIO_MODULE  := github.com/minio/minio
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS         := $(CURDIR)/.tools/bin
MINIO         := $(TOOLS)/minio
MINIO_STAMP   := $(TOOLS)/.minio-$(MINIO_VERSION)

# How long each fuzz target runs in `make test`, and in `make fuzz`.
FUZZTIME      ?= 3s
FUZZTIME_LONG ?= 5m

# fuzz-each runs every fuzz target of every package for $(1). Go fuzzes one
# target per run; a failing input is written to the package's testdata/fuzz,
# where plain `go test` runs it from then on.
define fuzz-each
	@set -e; for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$target ($$pkg) for $(1)"; \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(1) $$pkg; \
		done; \
	done
endef

export S3SSE_MINIO_BIN := $(MINIO)

.PHONY: all demo test vet minio bench fuzz clean

all: test

## demo: run the main job end to end against a local MinIO with a KMS.
demo: $(if $(S3SSE_S3_ENDPOINT)$(findstring s3.endpoint,$(DEMO_FLAGS)),,$(MINIO_STAMP))
	@go run ./examples/multitenant -demo $(DEMO_FLAGS)

## test: vet, then every test against a real MinIO (no server is a failure),
## then each fuzz target for FUZZTIME.
test: $(MINIO_STAMP) vet
	S3SSE_REQUIRE_S3=1 go test -race -count=1 ./...
	$(call fuzz-each,$(FUZZTIME))

## fuzz: each fuzz target for FUZZTIME_LONG (default 5m; make fuzz FUZZTIME_LONG=1h).
fuzz:
	$(call fuzz-each,$(FUZZTIME_LONG))

vet:
	go vet ./...

## minio: build the pinned MinIO server (about 4 minutes on 2 cores, once).
minio: $(MINIO_STAMP)

$(MINIO_STAMP):
	@echo "Building MinIO $(MINIO_VERSION) into .tools/bin. The first build takes about 4-5 minutes on 2 cores."
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install $(MINIO_MODULE)@$(MINIO_VERSION)
	@touch $@

## bench: the benchmarks BENCHMARKS.md reports.
bench: $(MINIO_STAMP)
	S3SSE_REQUIRE_S3=1 go test -run '^$$' -bench . -benchmem -count 5 ./...

clean:
	rm -rf .tools .out
