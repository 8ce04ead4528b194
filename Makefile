# One command each: `make run` opens the dashboard, `make test` runs every test.
# Both set everything up first on a machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
# Only this machine can open the dashboard; see the README ("Exposing the app") to share it.
ADDRESS ?= 127.0.0.1

.PHONY: run test setup system-deps thirdparty lint format bench sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m ui.serve --server.address $(ADDRESS) --server.port $(PORT)   # streamlit run app.py, imports done first

# Browser tests need Debian's Chromium, database tests a PostgreSQL server: installed when missing.
system-deps:
	bash scripts/system-deps.sh

# Third-party prediction sets for the tests: NannyML's wheel (read as a zip, never imported).
THIRDPARTY := $(VENV)/thirdparty/nannyml-0.13.1-py3-none-any.whl
$(THIRDPARTY):
	$(PY) -m pip download --quiet --no-deps nannyml==0.13.1 -d $(VENV)/thirdparty

thirdparty: $(THIRDPARTY)

# The Spark rollup engine's equality test needs PySpark (the [spark] extra) and Java.
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[spark]"
	touch $(SPARK_STAMP)

# The whole suite on a machine zone far from UTC (results must not depend on it), then the
# time-sensitive tests again in UTC, the zone most servers run in (the rollup store's modules
# build in the other zone within the first pass: tests/test_rollup*.py). `--dist loadgroup` is
# tests/scheduling.py's: whole test modules per worker (an xdist_group's modules together), longest first.
# Three workers on two cores: a fifth of two workers' time was idle (browsers, servers and
# subprocesses starting), docs/testing.md.
TZ_TESTS := tests/test_metrics.py tests/test_source.py tests/test_real_logs.py tests/test_summary.py \
            tests/test_anomalies.py tests/test_alerts.py tests/test_cli.py tests/test_compare.py tests/test_quality.py
WORKERS ?= 3
# Bytecode first: CPython 3.11's AST construction keeps its recursion depth in interpreter-wide
# state, so a module compiled on first import in one thread while Streamlit parses a page script
# in another can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython
# gh-106905; seen once in a fresh-clone CI run, an AppTest page run beside the warm-up's imports).
test: $(STAMP) system-deps $(THIRDPARTY) $(SPARK_STAMP)
	$(PY) -m compileall -q app.py monitoring ui pages scripts tests
	TZ=America/New_York $(PY) -m pytest -n $(WORKERS) --dist loadgroup --durations=20
	TZ=UTC $(PY) -m pytest -n $(WORKERS) --dist loadgroup $(TZ_TESTS)

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff format .

# bench_rollup.py builds the 100M logs' store there; bench_browser.py then times the pages on it.
BENCH_DIR ?= $(or $(MODELWATCH_BENCH_DIR),$(HOME)/.cache/modelwatch/bench)
# The rollup run first: it builds the 100M store the 100M browser run reads.
bench: $(STAMP) $(THIRDPARTY)
	$(PY) scripts/bench_rollup.py
	$(PY) scripts/bench_browser.py --scenario pages --rounds 2 --logs $(BENCH_DIR)/logs-100M --data-dir $(BENCH_DIR)/rollup-data-logs-100M
	$(PY) scripts/bench_browser.py
	$(PY) scripts/bench_priority.py
	$(PY) scripts/bench.py
	$(PY) scripts/bench_drift_sets.py
	$(PY) scripts/bench_logger.py

sample: $(STAMP)
	$(PY) -m monitoring generate --out sample_logs --days 30 --rows-per-day 3000 --seed 7

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
