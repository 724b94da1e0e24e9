# Every project command; README.md explains them. Python comes from PATH (PYTHON=...).
PYTHON ?= python3
export PYTHONPATH := $(CURDIR)/udfs:$(CURDIR)
GRPC_TOOLS := grpcio-tools==1.64.3
# 1.64.3 generates protobuf 5.26 code, which every protobuf runtime from 5.26 to 7.x accepts.
# The oldest and newest 5.x and 6.x runtimes are kept under .cache/ for tests/test_protobuf_compat.py.
PROTOBUF_COMPAT := 5.26.1 6.33.6

.PHONY: test lint deps protobuf-compat kapacitor models proto bench nab demo

test: lint protobuf-compat  ## the full suite: lint, unit and real kapacitord/influxd tests
	$(PYTHON) -m pytest

protobuf-compat:
	@for v in $(PROTOBUF_COMPAT); do [ -d .cache/protobuf-$$v ] || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps \
			--target .cache/protobuf-$$v protobuf==$$v || exit 1; done

lint:
	$(PYTHON) -m ruff check .

deps:  ## Python packages for tests, lint, benchmarks and the demo
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt

kapacitor:  ## build (or find cached) kapacitord at the version pinned in tools/kapacitor/go.mod
	bash scripts/install_kapacitor.sh

models:  ## retrain every model and rewrite models/manifest.json (deterministic)
	$(PYTHON) -m mlkit.train all

proto:  ## regenerate udfs/udfkit/udf_pb2.py from udf.proto
	$(PYTHON) -m pip install --quiet --target .cache/grpc-tools $(GRPC_TOOLS)
	cd udfs/udfkit && PYTHONPATH=$(CURDIR)/.cache/grpc-tools \
		$(PYTHON) -m grpc_tools.protoc -I. --python_out=. udf.proto

bench:  ## throughput and latency figures (not a test)
	$(PYTHON) bench/agent_throughput.py
	$(PYTHON) bench/udf_throughput.py

nab:  ## NAB-style scores of ads_model and the reference detectors
	$(PYTHON) bench/nab_score.py

demo:  ## influxd + kapacitord through the entrypoint, the simulator, and what was detected
	$(PYTHON) scripts/demo.py

include make/lock.mk
