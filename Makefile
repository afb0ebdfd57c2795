# Two entry points for a fresh clone (see README): `make run` and `make test`.
# Both bootstrap .venv idempotently: core and every plugin editable, plus test deps.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/*/pyproject.toml)
CSRC := $(wildcard src/tio_core/csrc/*.c src/tio_core/csrc/*.h)

.PHONY: run test lint bench clean sysdeps

# pip's chatter goes to a log that is shown only when the install fails, so `make run` stays quiet.
$(VENV)/.installed: pyproject.toml setup.py requirements-dev.txt $(PLUGINS)
	@echo "installing tio-core, its plugins and the test tools into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@( $(PY) -m pip install --upgrade pip setuptools wheel && \
	   $(PY) -m pip install -r requirements-dev.txt -e . $(foreach p,$(PLUGINS),-e $(dir $(p))) \
	 ) > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

# The C kernels are rebuilt in place whenever their sources change.
$(VENV)/.kernels: $(VENV)/.installed $(CSRC) setup.py
	@$(PY) setup.py -q build_ext --inplace
	@touch $@

run: $(VENV)/.kernels
	@$(VENV)/bin/tio forward

# System tools some root tests use (tcpdump captures a real TUN); best effort:
# installed only as root where apt-get exists, otherwise those tests skip with a reason.
sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v tcpdump >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq tcpdump) >/dev/null 2>&1 || echo "note: could not install tcpdump"; fi

# Style and types: ruff (rules in pyproject.toml), its formatter, mypy on src/ and the plugins.
lint: $(VENV)/.kernels
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint sysdeps
	$(PY) -m pytest

# A tool a benchmark needs, installed with apt-get when missing and possible (root, apt-get); otherwise what is
# missing is said and the rest still runs. $(call bench_tool,TOOL,BENCHMARK,WITHOUT IT)
define bench_tool
	@if ! command -v $(1) >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing $(1) for the $(2) (apt-get)"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1)) >/dev/null 2>&1 \
				|| echo "note: apt-get could not install $(1): $(3)"; \
		else \
			echo "note: $(1) is missing and cannot be installed here (needs root and apt-get):" \
				"$(3); install $(1) and run make bench as root"; \
		fi; \
	fi
endef

# The tun benchmark (iperf3 through TUN forwarders in network namespaces) needs root and iperf3, the
# replay benchmark tcpreplay (without it only tio replay is measured).
bench: $(VENV)/.kernels
	$(call bench_tool,iperf3,tun benchmark,the tun benchmark will not be measured)
	$(call bench_tool,tcpreplay,replay benchmark,the replay benchmark measures tio alone)
	@[ "$$(id -u)" = 0 ] || echo "note: not root: the tun benchmark (network namespaces, TUN devices) is skipped"
	$(VENV)/bin/tio bench

clean:
	rm -rf $(VENV) build src/*.egg-info plugins/*/src/*.egg-info src/tio_core/*.so
