# The two commands of the README. Each sets up .venv/ first if needed.
#   make demo   train two ALS retrains and stabilize them with dbt build
#   make test   run the test suite (pytest: math, dbt unit tests, integration)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test dist clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

# python_udfs as a zip for spark-submit --py-files (the executors import it)
dist: setup
	mkdir -p dist
	$(BIN)/python -c "import shutil; shutil.make_archive('dist/python_udfs', 'zip', '.', 'python_udfs')"

clean:
	rm -rf .spark demo_data target logs dist
