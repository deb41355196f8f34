# The two commands of the README. Each sets up .venv/ first if needed.
#   make demo   train two ALS retrains and stabilize them with dbt build
#   make test   run the test suite (pytest: math, dbt unit tests, integration)
#   make test-quick  the math, dbt's unit tests and one pipeline build (≤ 5 minutes)
#   make lint   ruff (Python) and sqlfluff (the SQL of models and macros), as CI runs them
#   make test-lakehouse  the published tables as Iceberg and as Delta tables (CI runs it)
#   make test-processes  the backfill in a plain shell, Spark Connect, a standalone cluster
#                        (each Spark a process of its own; CI runs it)
#   make test-spark3.5  the pipeline, bad-input, partitioned-input, cluster and Iceberg and
#                       Delta tests on Spark 3.5
# Also: make evaluate (ALS retrains, chained; evaluation/out/), make evaluate-movielens
# (weekly retrains of MovieLens 100k, two model families; make movielens fetches it), make report (HTML report
# of the published versions), make docs (dbt docs generate + serve), make backfill (a history
# of retrains: make backfill ARGS="--users db.user_emb --items db.item_emb --partition-column ds").

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# a second environment on the other Spark line the project supports (Spark 3.5)
VENV35 := .venv-spark3.5
# Debian's chromium, for the tests that open the HTML report and the dbt docs site
CHROMIUM ?= /usr/bin/chromium
# make report / make docs read the tables `make demo` published
DEMO_ENV := DBT_PROFILES_DIR=profiles DBT_SPARK_HOME=.spark DBT_SCHEMA=demo

.PHONY: setup jars jars-spark3.5 metastore test-shared-metastore test-processes setup-spark3.5 browser demo test test-quick test-lakehouse test-spark3.5 lint evaluate evaluate-movielens movielens report docs backfill dist clean

setup: $(VENV)/.installed

PROJECT_EXTRAS := -e '.[test,report,lint]'
# pyspark 3.5 pins numpy < 2; pyarrow 22 and later need numpy 2
SPARK35_REQUIREMENTS := -e '.[test]' 'pyspark[connect]==3.5.*' 'pyarrow<22'

# $(call install,venv,requirements): uv into the venv and the requirements with it; if
# that fails, again 20 s later, then with pip. A download the registry cuts short (CI,
# 2026-11-30: pyarrow's wheel stopped at 31 of 43 MB six times in a row) usually comes
# whole a little later. uv builds pyspark from its source archive at each install and
# keeps each build in its cache (1.4 GB a time, 42 GB here after a day of fresh clones,
# 2026-11-30): `uv cache prune` drops all but the latest.
define install
	$(1)/bin/python -m pip install --quiet uv || echo "uv could not be installed: pip installs"
	for installer in uv uv pip; do \
		if test $$installer = pip; then \
			$(1)/bin/python -m pip install --quiet --upgrade pip \
				&& $(1)/bin/python -m pip install --quiet --retries 10 $(2) && exit 0; \
		elif test -x $(1)/bin/uv; then \
			UV_HTTP_RETRIES=10 $(1)/bin/uv pip install --quiet --python $(1)/bin/python $(2) \
				&& { $(1)/bin/uv cache prune --quiet || true; exit 0; }; \
			echo "installing into $(1) with uv failed: trying again in 20 s"; sleep 20; \
		fi; \
	done; \
	echo "could not install into $(1): see the errors above"; exit 1
endef

# The packages are installed with uv (from PyPI, like pip; 32 s against pip's 58 s here,
# 2026-11-30), or with pip if uv cannot be installed or fails twice.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call install,$(VENV),$(PROJECT_EXTRAS))
	# the classes a local Spark session loads, archived once (JVM start ~7 s faster);
	# an optimisation: without it sessions start as before
	$(BIN)/python -m dbt.adapters.sparksession.class_archive \
		|| echo "no class archive made: local Spark sessions will start without it (slower)"
	touch $@

# Iceberg's and Delta Lake's Spark jars for each Spark line, fetched once from Maven
# Central into the line's environment (.venv/jars for 4.1, .venv-spark3.5/jars for
# 3.5), which the local_iceberg and local_delta targets load by path
# (DBT_LAKEHOUSE_JARS): a session never downloads anything. Only those targets need
# them. Iceberg 1.12 builds a runtime for each line; Delta's 4.x line is for Spark 4,
# its 3.3 line for Spark 3.5 (Scala 2.12): 3.3.3, whose
# CREATE OR REPLACE TABLE … AS SELECT works on Spark 3.5.6 and later (delta-io/delta#4671).
LAKEHOUSE_JARS := org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:1.12.0 \
	io.delta:delta-spark_4.1_2.13:4.4.0 io.delta:delta-storage:4.4.0
LAKEHOUSE_JARS_SPARK35 := org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.12.0 \
	io.delta:delta-spark_2.12:3.3.3 io.delta:delta-storage:3.3.3
JARS := $(VENV)/jars
JARS35 := $(VENV35)/jars

# $(call fetch_jars,folder,artifacts): Maven's dependency:copy of each artifact (no
# dependencies: each runtime jar carries its own) into the folder; once more 20 s later
# if the registry cuts one short
define fetch_jars
	@command -v mvn >/dev/null || { echo "Maven (mvn) fetches the Iceberg and Delta jars: install it, or put $(2) in $(1)/"; exit 1; }
	rm -rf $(1) && mkdir -p $(1)
	for artifact in $(2); do \
		copy="mvn --quiet --batch-mode dependency:copy -DoutputDirectory=$(1) -Dartifact=$$artifact"; \
		$$copy || { echo "fetching $$artifact failed: trying again in 20 s"; sleep 20; $$copy; } \
			|| exit 1; \
	done
	touch $(1)/.fetched
endef

# A shared Hive metastore (scripts/shared_metastore.py, make test-shared-metastore): Debian's
# PostgreSQL server and its JDBC driver, fetched once from Maven Central
POSTGRES ?= /usr/lib/postgresql/15/bin/postgres
METASTORE_JARS := $(VENV)/metastore-jars
POSTGRES_JDBC := org.postgresql:postgresql:42.7.14

metastore: $(POSTGRES) $(METASTORE_JARS)/.fetched

$(POSTGRES):
	@echo "installing Debian's PostgreSQL server (the shared metastore's database)"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get install -y -qq postgresql >/dev/null

$(METASTORE_JARS)/.fetched: Makefile
	$(call fetch_jars,$(METASTORE_JARS),$(POSTGRES_JDBC))

jars: $(JARS)/.fetched

$(JARS)/.fetched: Makefile
	$(call fetch_jars,$(JARS),$(LAKEHOUSE_JARS))

jars-spark3.5: $(JARS35)/.fetched

$(JARS35)/.fetched: Makefile
	$(call fetch_jars,$(JARS35),$(LAKEHOUSE_JARS_SPARK35))

setup-spark3.5: $(VENV35)/.installed

# no class archive for it: making one takes 34 s and saves 5-11 s in make test-spark3.5,
# whose one session is the only local JVM (2026-12-01); `python -m
# dbt.adapters.sparksession.class_archive` in it makes one
$(VENV35)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV35)
	$(call install,$(VENV35),$(SPARK35_REQUIREMENTS))
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

# MovieLens 100k (GroupLens; research use, cite, no redistribution): fetched at set-up
# from the wheel of recbole 1.2.1 on PyPI, its three atomic files only, never committed
MOVIELENS := evaluation/data/ml-100k
movielens: $(MOVIELENS)/ml-100k.inter

$(MOVIELENS)/ml-100k.inter: | $(VENV)/.installed
	$(BIN)/pip download --quiet --no-deps --dest $(VENV)/downloads recbole==1.2.1
	mkdir -p $(MOVIELENS)
	$(BIN)/python -c "import sys, zipfile; wheel = zipfile.ZipFile(sys.argv[1]); \
		[open(f'$(MOVIELENS)/ml-100k.{s}', 'wb').write(wheel.read(f'recbole/dataset_example/ml-100k/ml-100k.{s}')) \
		 for s in ('user', 'item', 'inter')]" $(VENV)/downloads/recbole-1.2.1-py3-none-any.whl

evaluate-movielens: setup movielens
	$(BIN)/python evaluation/movielens.py

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

# The lakehouse tests (Iceberg and Delta; 3.5-7 min) and the Spark 3.5 ones (2.5-5 min) run as
# steps of their own, after it: inside it each took the suite past its 25 minutes (on a
# fresh clone, 2026-11-30: 26.9 min with the lakehouse tests; 26.2 min with the 3.5 ones,
# set-up of .venv-spark3.5 included, their part 474 s beside the other worker)
test: setup browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25 --ignore=tests/python/test_lakehouse.py \
		--ignore=tests/python/test_shared_metastore.py $(addprefix --ignore=tests/python/,$(PROCESS_TESTS))

# the tests whose Spark runs in processes of their own, beside the test's: the backfill
# as a user types it (`make backfill` in a plain shell, killed and resumed; the report
# and a take-back after it), a Spark Connect server (the pipeline, dbt's adapter suite
# and the errors through it) and spark-submit on a standalone cluster. A CI step of
# its own since 2026-12-04: their cold JVMs beside make test's two workers took 650 s
# of them and the suite to 20.8 min, past its 15
PROCESS_TESTS := test_backfill.py test_connect.py test_cluster.py

test-processes: setup
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --durations=8 \
		$(addprefix tests/python/,$(PROCESS_TESTS))

# the published tables as Iceberg and as Delta tables, each format in processes of its
# own, the two formats side by side (5.4 min; 7.1 one after the other, 2026-11-30)
test-lakehouse: setup jars
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --durations=5 tests/python/test_lakehouse.py

# runs at once (a backfill, the daily build and its retry), and a build beside
# unpublish_versions, on a Hive metastore service on PostgreSQL that each run's process
# reaches over thrift (as a shared warehouse's); Hive, Iceberg and Delta tables, each
# format on a worker of its own
test-shared-metastore: setup metastore jars
	$(BIN)/python -m pytest -p no:cacheprovider -n 3 --dist loadgroup --durations=8 \
		tests/python/test_shared_metastore.py

# the edit-test loop (≤ 5 minutes): the math, the adapter's unit tests, dbt's unit
# tests and one in-process pipeline build of two versions; CI runs the full `make test`
QUICK_TESTS := test_linalg.py test_arrow.py test_grams.py test_evaluation.py test_layout.py \
	test_docs_commands.py test_adapter_plugin.py test_unit_tests.py test_pipeline.py
QUICK_SKIP := not rebuilding and not renders_in_chromium and not docs_site

test-quick: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=10 \
		$(addprefix tests/python/,$(QUICK_TESTS)) -k "$(QUICK_SKIP)"

# on Spark 3.5 (CI runs it after make test; test_spark35.py, skipped by make test): a
# pipeline of two versions, every bad input, partitioned inputs, and spark-submit of one
# version on a 3.5 standalone cluster, in .venv-spark3.5's Python, one session; beside
# them (two workers) Iceberg and Delta tables published with the 3.5 jars
test-spark3.5: setup setup-spark3.5 jars-spark3.5
	SPARK35_PYTHON=$(abspath $(VENV35))/bin/python $(BIN)/python -m pytest -p no:cacheprovider \
		-n 3 --durations=5 tests/python/test_spark35.py

# what CI checks before the tests (pre-commit runs the same: pre-commit install)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint models macros --processes 2

# python_udfs as a zip for spark-submit --py-files (the executors import it)
dist: setup
	mkdir -p dist
	$(BIN)/python -c "import shutil; shutil.make_archive('dist/python_udfs', 'zip', '.', 'python_udfs')"

clean:
	rm -rf .spark demo_data target logs dist
