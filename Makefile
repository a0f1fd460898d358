# The README's commands. Every target bootstraps .venv itself, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export DAGSTER_HOME ?= $(abspath .dagster)
export DBT_PROFILES_DIR ?= $(abspath dbt_project)
export RELAY_WAREHOUSE ?= $(abspath data/warehouse.duckdb)

.PHONY: demo test test-e2e dev manifest browser bench bench-ceiling bench-events soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	mkdir -p $(DAGSTER_HOME) && ln -sf $(abspath dagster.yaml) $(DAGSTER_HOME)/dagster.yaml
	touch $(STAMP)

# dbt's manifest is a build artifact that Dagster and the sync engine read; parsing also registers the
# segment models (relay/segments.py).
manifest: $(STAMP)
	$(BIN)/python -m relay.segments

demo: $(STAMP) manifest
	$(BIN)/relay demo

# The UI test drives Debian's Chromium; install it when missing and allowed (root, as in CI).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is not installed: the UI test will be skipped (install the Debian package chromium)"

test: $(STAMP) manifest browser
	$(BIN)/python -m pytest -n 2 -m "not e2e" --durations=15

# Whole commands side by side (two `relay demo`s in two data directories at once): too heavy for make test;
# CI runs it after make test.
test-e2e: $(STAMP) manifest
	$(BIN)/python -m pytest -n 2 -m e2e

# Not part of make test (README: Benchmarks, for what it measures and how long it takes).
# BENCH_ARGS="--scales 300000" picks other scales; results in artifacts/bench/.
# The ceiling's figures are committed: they take hours, and a run of one scale keeps the other's.
CEILING := docs/bench-ceiling.json
bench: $(STAMP) manifest
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/bench.py $(if $(wildcard $(CEILING)),--include $(CEILING)) $(BENCH_ARGS)

# The single-node ceiling: the pipeline at 3M and 10M customers, a step stopped after an hour (hours; make
# bench then shows its table beside its own scales). BENCH_ARGS="--scales 10000000" measures one of them.
bench-ceiling: $(STAMP) manifest
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/bench.py --scales 3000000,10000000 --scales-only --step-limit 3600 \
		--out artifacts/bench-ceiling $(if $(wildcard $(CEILING)),--include $(CEILING)) $(BENCH_ARGS)
	cp artifacts/bench-ceiling/results.json $(CEILING)

# Events syncs' throughput against the emulators' ceiling (1M events per destination; README: Benchmarks).
bench-events: $(STAMP) manifest
	$(BIN)/python bench/bench_events.py $(BENCH_EVENTS_ARGS)

# Not part of make test: a fault soak per destination, then SIGKILLs and failpoint crashes mid-sync, then the
# events phase (README lists its duration). SOAK_ARGS="--rows 20000 --kills 6" or "--only crash" for less;
# SOAK_EVENTS_ARGS="--events 10000 --kills 3" for a shorter events phase.
soak: $(STAMP) manifest
	$(BIN)/python bench/soak.py $(SOAK_ARGS)
	$(BIN)/python bench/soak_events.py $(SOAK_EVENTS_ARGS)

# dagster dev on 127.0.0.1:3000; in emulator mode it also starts the emulators when none of this data dir answer.
dev: $(STAMP) manifest
	$(BIN)/relay dev --port 3000

clean:
	rm -rf data .dagster dbt_project/target dbt_project/logs
