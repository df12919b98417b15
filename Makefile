# retake-fsm: `make test` installs whatever is missing (idempotent), then lints,
# type-checks and runs the whole suite. `make demo` shows a real go-live locally.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg xvfb scrot nginx libnginx-mod-rtmp graphviz chromium xterm x11-utils systemd
PYTEST_ARGS ?=

.PHONY: test lint typecheck pytest deps apt venv demo bench chaos clean

test: deps lint typecheck pytest

deps: apt venv

# Debian packages the suite drives for real; installed only when missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv is rebuilt only when pyproject.toml changed since the last install.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

lint: venv
	$(BIN)/ruff check retake_fsm tests bench docs

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

demo: deps
	$(BIN)/retake-fsm demo

bench: deps
	$(BIN)/python bench/run.py

chaos: deps
	$(BIN)/python bench/chaos.py --cycles 50

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
