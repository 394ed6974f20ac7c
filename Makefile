# Ferry developer entry points. `make demo` and `make test` are the two commands the
# README promises for a fresh machine; each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install peers guests images lint unit integration e2e clean

demo: install peers
	$(VENV)/bin/ferry demo

test: install peers guests images lint
	$(PY) -m pytest

install: $(STAMP)

$(STAMP): requirements.lock scripts/install-python.sh $(wildcard */pyproject.toml services/*/pyproject.toml peers/launch/pyproject.toml tests/peers/pyproject.toml)
	scripts/install-python.sh
	touch $(STAMP)

peers:
	scripts/install-debs.sh
	peers/build.sh

# Real test guests (peers/guests/build.sh): VMware-like Debian disks, cached per machine
# under ~/.cache/ferry/guests, linked from .peers/guests/<guest>.raw.
guests: peers
	peers/guests/build.sh

# OCI images of the services and the disk sink, without a container engine (deploy/images/build.py);
# cached per machine under ~/.cache/ferry/images, linked from var/images/<image>.
images: install peers
	$(PY) deploy/images/build.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest tests/unit

clean:
	rm -rf $(VENV) .peers .mypy_cache .ruff_cache .pytest_cache
