# Samsa: thin wrapper over CMake. `make run` and `make test` do all set-up on a fresh
# Debian bookworm machine (installing missing packages with apt-get).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PY         := /usr/bin/python3
DEB_PKGS   := build-essential cmake pkg-config libcmocka-dev librdkafka-dev kcat \
              python3-pytest python3-confluent-kafka python3-kafka python3-venv \
              zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev libssl-dev \
              clang libclang-rt-14-dev clang-format-14 fio procps nftables
# Only `make bench` needs these: the peer brokers it measures beside Samsa (Redis,
# NATS), their client libraries for ../shared/bench/peers (whose build also compiles the
# RabbitMQ client, hence librabbitmq-dev), bc for its arithmetic, fio, and strace (to
# count Kafka's fsyncs).
BENCH_DEB_PKGS := redis-server redis-tools nats-server libhiredis-dev libnats-dev \
                  librabbitmq-dev bc fio strace

.PHONY: all deps bench-deps configure build build-asan run cluster cluster-down test unit unit-asan integration js-deps ref-deps fuzz fuzz-short sim chaos bench clean format format-check

all: build

# Installs the packages of $(1) that are missing, so repeated runs cost one dpkg-query.
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PKGS))
	@# Node.js may come from another repository that bundles npm; only install Debian's
	@# when there is no node at all.
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMSA_WERROR=ON >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSAMSA_SANITIZE=ON -DSAMSA_WERROR=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Builds only the broker and the CLI, then runs the broker in the foreground.
run: configure
	cmake --build $(BUILD) -j $(JOBS) --target samsa-server samsa
	@mkdir -p data
	./$(BUILD)/samsa-server -c config/server.properties

# Builds the broker and the CLI, then starts a local three-node cluster in the background
# (data, properties and logs in ./samsa-cluster; `samsa cluster up` in docs/cli.md) and
# prints its bootstrap servers. Run again after cluster-down to restart it with its data.
CLUSTER_DIR ?= samsa-cluster
cluster: configure
	cmake --build $(BUILD) -j $(JOBS) --target samsa-server samsa
	./$(BUILD)/tools/samsa cluster up --nodes 3 --dir $(CLUSTER_DIR) --server ./$(BUILD)/samsa-server

# Stops it (the data stays; `./build/tools/samsa cluster down --purge` also removes it).
cluster-down:
	./$(BUILD)/tools/samsa cluster down --dir $(CLUSTER_DIR)

unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

unit-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

js-deps:
	@if [ -f tests/integration/js/package.json ] && [ ! -d tests/integration/js/node_modules/kafkajs ]; then \
	  cd tests/integration/js && npm install --no-audit --no-fund --silent; fi

# The references fetched from their own registries into caches outside the repo (Kafka
# 4.4 and its Java client from Maven Central, franz-go and sarama from the Go module
# proxy, current Python clients from PyPI into a virtualenv): each folder's deps.sh
# installs what it needs and fails loudly when it cannot.
REF_DEPS := tests/reference/deps.sh tests/integration/java/deps.sh \
            tests/integration/go/deps.sh tests/integration/pyclients/deps.sh
ref-deps:
	@for s in $(REF_DEPS); do if [ -x $$s ]; then $$s || exit 1; fi; done

# Two at a time: the suites mostly wait on processes and sockets (a serial run kept the
# two cores about a third busy), and each starts its own servers on free ports. Only
# integration_python makes network namespaces, so no two runs share an address block.
INTEGRATION_JOBS ?= 2
integration: build js-deps ref-deps
	ctest --test-dir $(BUILD) -L integration --output-on-failure -j $(INTEGRATION_JOBS)

# The project's C files, formatted by .clang-format (STYLE.md, "Formatting").
C_FILES = $(shell find src tests tools bench -path '*/node_modules' -prune -o \
                   \( -name '*.c' -o -name '*.h' \) -print)
format: deps
	clang-format-14 -i $(C_FILES)

format-check: deps
	@clang-format-14 --dry-run --Werror $(C_FILES) 2>/dev/null || \
	  { echo "C files differ from .clang-format: run 'make format'"; exit 1; }

fuzz-short:
	@if [ -x tests/fuzz/run.sh ]; then tests/fuzz/run.sh 20 1; fi

fuzz:
	@if [ -x tests/fuzz/run.sh ]; then tests/fuzz/run.sh $${FUZZ_SECONDS:-600}; fi

# Every test: the format check, unit tests (plain and under ASan/UBSan), integration
# tests with real clients against real broker processes, and a short bounded fuzz run.
test: format-check unit unit-asan integration fuzz-short

# Long deterministic simulations (make test runs 1,000 seeds of raft_sim, 2,000 of
# metadata_sim, the metadata quorum over real logs, and 2,000 of replication_sim, partition
# replication over real logs): make sim SEEDS=100000 MSIM_SEEDS=10000 RSIM_SEEDS=5000. The
# simulations' logs go to SIM_DIR (in memory: the sims decide what a crash loses).
SEEDS ?= 100000
MSIM_SEEDS ?= 10000
RSIM_SEEDS ?= 5000
SIM_DIR ?= $(if $(wildcard /dev/shm),/dev/shm,/tmp)
sim: build
	./$(BUILD)/tests/unit/raft/raft_sim --seeds $(SEEDS)
	./$(BUILD)/tests/unit/cluster/metadata_sim --seeds $(MSIM_SEEDS) --quiet --dir $(SIM_DIR)
	./$(BUILD)/tests/unit/replica/replication_sim --seeds $(RSIM_SEEDS) --quiet --dir $(SIM_DIR)

# Chaos against real three-node clusters (tests/chaos/chaos.py): RUNS runs from seed SEED,
# CHAOS_SECONDS each. The faults: kill -9, SIGSTOP, SIGTERM and, on Samsa, torn (kill -9,
# then a torn tail in the node's partition logs before its restart). CHAOS_NETNS=1 puts
# each node in its own network namespace and adds network faults (root, ip netns and nft
# needed); CHAOS_TARGET=kafka runs the same harness, process faults only, against Apache
# Kafka 4.4 (tests/reference/kafka.sh, fetched when missing), to tell a harness bug from
# a Samsa one. CHAOS_FAULTS=kill,term,... narrows the seed's choice. CHAOS_JAVA=1 adds
# a producer written with the Apache Kafka Java client 4.4 beside the librdkafka one
# (CHAOS_JAVA=only: instead of it; Java and Maven needed, tests/integration/java/deps.sh
# fills ~/.m2). CHAOS_TXN=1 adds a transactional producer on a topic of its own, checked
# read_committed (every committed transaction exactly once, none aborted, each all or
# nothing, no transaction left open). make test runs one short run (test_chaos.py, in
# namespaces when it can, with the transactional producer).
RUNS ?= 3
SEED ?= 1
CHAOS_SECONDS ?= 60
CHAOS_NETNS ?=
CHAOS_TARGET ?= samsa
CHAOS_FAULTS ?=
CHAOS_JAVA ?=
CHAOS_TXN ?=
chaos: build
	SAMSA_SERVER=$(CURDIR)/$(BUILD)/samsa-server $(PY) tests/chaos/chaos.py --seed $(SEED) --runs $(RUNS) --duration $(CHAOS_SECONDS) --target $(CHAOS_TARGET) $(if $(filter-out 0,$(CHAOS_NETNS)),--netns) $(if $(CHAOS_FAULTS),--faults $(CHAOS_FAULTS)) $(if $(filter only,$(CHAOS_JAVA)),--java-producer only,$(if $(filter-out 0,$(CHAOS_JAVA)),--java-producer)) $(if $(filter-out 0,$(CHAOS_TXN)),--txn)

# Installs only what is missing, like deps, but kept apart so that make test never needs
# the peers. A failed install does not stop the benchmark: it reports the peer whose
# server or client is missing in its table and measures the rest.
bench-deps:
	-$(call install_missing,$(BENCH_DEB_PKGS))

bench: bench-deps build
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
