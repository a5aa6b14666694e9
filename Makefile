# Fresh machine: `make demo` (main job) and `make test` (test suite).
# Both install first; the install is a no-op when already done.
# Use another interpreter (e.g. a conda env with CUDA torch): make PY=python ...
PY ?= .venv/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-slow

install:
	PY=$(PY) bash tools/install.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)
