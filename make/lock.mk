# conda-lock for the image's UDF env. Include from the top-level Makefile: include make/lock.mk
#
#   make lock              regenerate environment.yml, then solve conda-lock.yml
#   make environment.yml   only regenerate environment.yml from conda_requirements.txt
#
# conda-lock cannot read a requirements txt, so environment.yml is generated from
# conda_requirements.txt (the single place the pins are written) and the Python version of the
# Dockerfile's conda stage, and committed. The solve needs the conda-forge channel (and
# conda-lock fetches micromamba if no conda, mamba or micromamba is on PATH): run it where that
# is reachable, then commit both files. conda-lock.yml is only ever written by this target.
CONDA_LOCK_VERSION := 4.0.3
LOCK_PLATFORMS := linux-64 linux-aarch64
LOCK_PYTHON ?= python3
CONDA_PYTHON := $(shell grep -o 'python=[0-9.]*' Dockerfile | head -1)

.PHONY: lock
lock: environment.yml
	$(LOCK_PYTHON) -m pip install conda-lock==$(CONDA_LOCK_VERSION)
	$(LOCK_PYTHON) -m conda_lock lock --file environment.yml \
		$(addprefix --platform ,$(LOCK_PLATFORMS)) --lockfile conda-lock.yml

environment.yml: conda_requirements.txt Dockerfile
	{ echo "# Generated from conda_requirements.txt by make/lock.mk (make environment.yml)."; \
	  echo "# Edit conda_requirements.txt, not this file."; \
	  echo "name: udfs"; \
	  echo "channels:"; \
	  echo "  - conda-forge"; \
	  echo "  - nodefaults"; \
	  echo "dependencies:"; \
	  echo "  - $(CONDA_PYTHON)"; \
	  grep -Ev '^[[:space:]]*(#|$$)' $< | sed 's/^/  - /'; } > $@.tmp
	mv $@.tmp $@
