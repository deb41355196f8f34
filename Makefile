# The two commands of the README. Each sets up .venv/ first if needed.
#   make demo   train two ALS retrains and stabilize them with dbt build
#   make test   run the test suite (pytest: math, dbt unit tests, integration)
#   make test-quick  the math, dbt's unit tests and one pipeline build (≤ 5 minutes)
#   make lint   ruff (Python) and sqlfluff (the models' SQL), as CI runs them
# Also: make evaluate (ALS retrains, chained; evaluation/out/), make report (HTML report
# of the published versions), make docs (dbt docs generate + serve), make backfill (a history
# of retrains: make backfill ARGS="--users db.user_emb --items db.item_emb --partition-column ds").

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian's chromium, for the tests that open the HTML report and the dbt docs site
CHROMIUM ?= /usr/bin/chromium
# make report / make docs read the tables `make demo` published
DEMO_ENV := DBT_PROFILES_DIR=profiles DBT_SPARK_HOME=.spark DBT_SCHEMA=demo

.PHONY: setup browser demo test test-quick lint evaluate report docs backfill dist clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,report,lint]'
	# the classes a local Spark session loads, archived once (JVM start ~7 s faster);
	# an optimisation: without it sessions start as before
	$(BIN)/python -m dbt.adapters.sparksession.class_archive \
		|| echo "no class archive made: local Spark sessions will start without it (slower)"
	touch $@

browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "installing Debian's chromium (headless browser for the report and docs tests)"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get install -y -qq chromium >/dev/null

demo: setup
	$(BIN)/python scripts/demo.py

evaluate: setup
	$(BIN)/python evaluation/run.py

report: setup
	$(DEMO_ENV) $(BIN)/python scripts/report.py

# stabilize a history of retrains in order, in one process; ARGS: see scripts/backfill.py --help
backfill: setup
	$(BIN)/python scripts/backfill.py $(ARGS)

# the project's docs with lineage, on the demo's tables: http://localhost:8080
docs: setup
	$(DEMO_ENV) $(BIN)/dbt parse
	$(DEMO_ENV) $(BIN)/dbt docs generate --no-compile
	$(DEMO_ENV) $(BIN)/dbt docs serve --port 8080 --no-browser

test: setup browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

# the edit-test loop (≤ 5 minutes): the math, the adapter's unit tests, dbt's unit
# tests and one in-process pipeline build of two versions; CI runs the full `make test`
QUICK_TESTS := test_linalg.py test_arrow.py test_grams.py test_evaluation.py test_layout.py \
	test_docs_commands.py test_adapter_plugin.py test_unit_tests.py test_pipeline.py
QUICK_SKIP := not rebuilding and not arrow_and_sql and not renders_in_chromium and not docs_site

test-quick: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=10 \
		$(addprefix tests/python/,$(QUICK_TESTS)) -k "$(QUICK_SKIP)"

# what CI checks before the tests (pre-commit runs the same: pre-commit install)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint models --processes 2

# python_udfs as a zip for spark-submit --py-files (the executors import it)
dist: setup
	mkdir -p dist
	$(BIN)/python -c "import shutil; shutil.make_archive('dist/python_udfs', 'zip', '.', 'python_udfs')"

clean:
	rm -rf .spark demo_data target logs dist
