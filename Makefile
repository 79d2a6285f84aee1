# Two commands work on a fresh machine with Python 3.11 and make:
#   make demo   executes the example notebooks through a real Jupyter kernel
#   make test   runs the test suite
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0

.PHONY: demo test bench bench-quick lint clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/run_examples.py

# TEST_EXTRAS=browser (CI sets it) also installs the browser test's packages;
# without them, or without /usr/bin/chromium, that test is skipped and the summary (-rfEs) says why.
test: $(VENV)/.installed
	@if [ -n "$(TEST_EXTRAS)" ]; then echo "installing .[test,$(TEST_EXTRAS)]"; $(PY) -m pip install -q -e ".[test,$(TEST_EXTRAS)]"; fi
	$(PY) -m pytest -q -rfEs

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py

bench-quick: $(VENV)/.installed-bench
	$(PY) benchmarks/run.py --quick

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ray_magic tests benchmarks examples

clean:
	rm -rf $(VENV) examples/out build *.egg-info
