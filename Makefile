# Two entry points for a fresh clone (see README): `make run` and `make test`.
# Both bootstrap .venv idempotently: core and every plugin editable, plus test deps.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/*/pyproject.toml)
CSRC := $(wildcard src/tio_core/csrc/*.c src/tio_core/csrc/*.h)

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml setup.py requirements-dev.txt $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements-dev.txt -e . $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

# The C kernels are rebuilt in place whenever their sources change.
$(VENV)/.kernels: $(VENV)/.installed $(CSRC) setup.py
	$(PY) setup.py -q build_ext --inplace
	touch $@

run: $(VENV)/.kernels
	$(VENV)/bin/tio forward

test: $(VENV)/.kernels
	$(PY) -m pytest

bench: $(VENV)/.kernels
	$(VENV)/bin/tio bench

clean:
	rm -rf $(VENV) build src/*.egg-info plugins/*/src/*.egg-info src/tio_core/*.so
