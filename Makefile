# make run  : set up .venv if needed, then run every study notebook at the quick preset (outputs/)
# make test : set up .venv if needed, then run the whole test suite (pytest + nbval on the notebooks)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The offline CIFAR-10 copy beside the checkout, when there is one; otherwise data/ (torchvision download).
SHARED_DATA := $(abspath ../shared/data/cifar10)
export PLASTICITY_DATA ?= $(if $(wildcard $(SHARED_DATA)/train.npz),$(SHARED_DATA),)

.PHONY: run test setup clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	$(PY) -m ipykernel install --sys-prefix --name plasticity-nb --display-name "Python (plasticity_nb)"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m plasticity_nb run --preset quick

test: $(STAMP)
	$(PY) -m pytest

clean-outputs:
	rm -rf outputs
