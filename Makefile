# Every project command; README.md explains them. Python is the project's .venv, where the
# project is installed as a package (pip install -e .): no PYTHONPATH, no sys.path edits.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
GRPC_TOOLS := grpcio-tools==1.64.3
# 1.64.3 generates protobuf 5.26 code, which every protobuf runtime from 5.26 to 7.x accepts.
# The oldest and newest 5.x and 6.x runtimes are kept under .cache/ for tests/test_protobuf_compat.py.
PROTOBUF_COMPAT := 5.26.1 6.33.6

.PHONY: test check lint deps venv protobuf-compat kapacitor models proto bench nab nab-tradeoff demo shards helm bench-shards

test:  ## set-up (once), then lint and the full suite against real kapacitord/influxd
	bash scripts/setup.sh test
	$(MAKE) --no-print-directory lint protobuf-compat
	$(PYTHON) -m pytest

protobuf-compat: venv
	@for v in $(PROTOBUF_COMPAT); do [ -d .cache/protobuf-$$v ] || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps \
			--target .cache/protobuf-$$v protobuf==$$v || exit 1; done

check: venv  ## about a minute, no set-up: lint, then the tests that start no server
	$(MAKE) --no-print-directory lint protobuf-compat
	$(PYTHON) -m pytest -q -m "not server and not docker and not slow"

lint: venv udfs/udfkit/udf_pb2.pyi  ## ruff; mypy on the packages (pyproject.toml [tool.mypy])
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

# udf_pb2's type stub for mypy, generated (mypy-protobuf) and git-ignored like any build output
udfs/udfkit/udf_pb2.pyi: udfs/udfkit/udf.proto | venv
	cd udfs/udfkit && PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
		$(CURDIR)/$(PYTHON) -m grpc_tools.protoc -I. --mypy_out=. udf.proto

deps:  ## everything the demo and the tests need (scripts/setup.sh: apt as root, .venv, kapacitord)
	bash scripts/setup.sh test

venv:  ## only .venv: the project installed as a package, with requirements-dev.txt
	bash scripts/setup.sh venv

kapacitor:  ## build (or find cached) kapacitord at the version pinned in tools/kapacitor/go.mod
	bash scripts/install_kapacitor.sh

models: venv  ## retrain every model and rewrite models/manifest.json (deterministic)
	$(PYTHON) -m mlkit.train all

proto: venv  ## regenerate udfs/udfkit/udf_pb2.py from udf.proto
	$(PYTHON) -m pip install --quiet --target .cache/grpc-tools $(GRPC_TOOLS)
	cd udfs/udfkit && PYTHONPATH=$(CURDIR)/.cache/grpc-tools \
		$(PYTHON) -m grpc_tools.protoc -I. --python_out=. udf.proto

bench: venv  ## throughput and latency figures (not a test)
	$(PYTHON) bench/agent_throughput.py
	$(PYTHON) bench/udf_throughput.py
	$(PYTHON) bench/fleet.py

nab: venv  ## ads_model's NAB corpus figures and two references; fails only below bench/nab_reference.json
	$(PYTHON) bench/nab_score.py

nab-tradeoff: venv  ## ads_model's option settings on the NAB corpus: recall against quiet
	$(PYTHON) bench/nab_tradeoff.py

SHARDS ?= 2

shards: venv  ## docker-compose.shards.yml and deploy/telegraf/router.conf for SHARDS Kapacitor shards
	$(PYTHON) scripts/shards.py --shards $(SHARDS)

helm:  ## build (or find cached) helm at the version pinned in tools/helm/go.mod
	bash scripts/install_helm.sh

bench-shards: venv  ## points/s through 1 and 2 shards (Docker); BENCH_SHARDS="1 2 4 8" on a larger machine
	$(PYTHON) bench/shards.py --rounds 3 --direct --shards $(or $(BENCH_SHARDS),1 2)

demo:  ## set-up (once), then influxd + kapacitord through the entrypoint, the simulator, the report
	bash scripts/setup.sh demo
	$(PYTHON) scripts/demo.py

include make/lock.mk
