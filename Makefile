# make run  : set up .venv if needed, then the main job: settle C1, C2, C4 on fresh seeds, then every notebook (outputs/)
# make test : set up .venv (and the test tools) if needed, then lint (ruff) and run the whole test suite
# make docs : the documentation site, built offline and strictly into site/ (open site/index.html)
# make soak : the long loops the suite runs once (concurrent batches, SIGKILLs over every notebook): ~1-2 hours
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-tools-stamp
# The offline CIFAR-10 copy beside the checkout, when there is one; otherwise data/ (torchvision download).
SHARED_DATA := $(abspath ../shared/data/cifar10)
export PLASTICITY_DATA ?= $(if $(wildcard $(SHARED_DATA)/train.npz),$(SHARED_DATA),)

.PHONY: run test soak docs setup test-tools benchmark-tools clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name plasticity-nb --display-name "Python (plasticity_nb)"
	touch $(STAMP)

# What the tests need beyond the package: ruff (the linter), Ray (the optional executor), Playwright for the
# real-browser test of the explorer, and MkDocs for the site's strict build. No root needed: the browser itself is
# found (or installed) by tests/browser.py.
test-tools: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[ray,browser,dev,docs]'
	touch $(TEST_STAMP)

# PyHessian is installed only for benchmarks/curvature_vs_pyhessian.py.
benchmark-tools: $(STAMP)
	$(PY) -m pip install --quiet pyhessian==0.1

run: $(STAMP)
	$(PY) -m plasticity_nb run --preset quick

# The first line says which browser the browser test drives, or why it is skipped.
test: $(TEST_STAMP)
	$(PY) -m ruff check plasticity_nb tests benchmarks tools docs/hooks.py
	$(PY) -m tests.browser
	$(PY) -m pytest

docs: $(TEST_STAMP)
	$(PY) -m tools.build_docs

# -s: each soak prints every pair's outcome and every kill's moment as it goes.
soak: $(TEST_STAMP)
	$(PY) -m pytest -n 0 -m soak -s tests/test_soak.py

clean-outputs:
	rm -rf outputs
