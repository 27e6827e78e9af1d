# ok_ml_assets: `make run` runs prod_discovery end to end on embedded defaults; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
UV := .cache/uv/bin/uv
export OK_ML_HOME ?= $(CURDIR)/.ok_ml
export DAGSTER_HOME ?= $(OK_ML_HOME)/dagster
PRESET ?= default
# ENGINE=spark runs every experiment whose type implements Spark on it (OK_ML_SPARK_MASTER, default local[*]).
ENGINE ?=
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
SERVING_PORT ?= 8700
# Where the two UIs are served: each links to the other (Dagster assets -> MLflow runs, MLflow runs -> Dagster runs).
export OK_ML_DAGSTER_UI_URL ?= http://127.0.0.1:$(DAGSTER_PORT)
export OK_ML_MLFLOW_UI_URL ?= http://127.0.0.1:$(MLFLOW_PORT)
# The local Redis of the serving tests and `make serve`; not 6379, which other work on this machine may use.
REDIS_PORT ?= $(or $(OK_ML_REDIS_PORT),6390)
export OK_ML_REDIS_PORT := $(REDIS_PORT)

.PHONY: install run test bench lint dev serve mlflow-ui kafka-up kafka-down kafka-fetch clean chromium openblas redis-install redis-up redis-down

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet uv==0.13.8

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --extra test --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the browser tests (Playwright drives it; `playwright install` would need the internet).
chromium:
	test -x /usr/bin/chromium || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# Debian's OpenBLAS as the machine's libblas.so.3 and liblapack.so.3: Spark MLlib's ALS calls it instead of its Java
# fallback (about 30 % faster here). Installed only when missing; without it MLlib still runs, on Java BLAS.
openblas:
	dpkg -s libopenblas0-pthread >/dev/null 2>&1 || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas0-pthread; }

kafka-fetch:
	kafka/kafka.sh fetch

kafka-up:
	kafka/kafka.sh up

kafka-down:
	kafka/kafka.sh down

# Debian's redis-server for the Redis online store (tests, `make serve`), installed only when missing.
redis-install:
	command -v redis-server >/dev/null || { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }

# Started with --appendonly yes --appendfsync everysec: a Redis commit is durable once the AOF is fsynced (about 1 s).
redis-up:
	redis/redis.sh up

redis-down:
	redis/redis.sh down

run: install kafka-up $(if $(filter spark,$(ENGINE)),openblas)
	$(VENV)/bin/ok-ml run --preset $(PRESET)$(if $(ENGINE), --engine $(ENGINE))

test: install chromium openblas redis-install kafka-up redis-up
	$(VENV)/bin/pytest

# Every benchmark, each figure beside its baseline from the same run, and one summary table at the end.
bench: install openblas kafka-up
	$(VENV)/bin/python benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check .

dev: install kafka-up
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp ok_ml_assets/instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_PORT=$(DAGSTER_PORT) scripts/dagster_dev.sh

# The serving side: ingester and read API on 127.0.0.1:$(SERVING_PORT); Redis when REDIS_URL is set, else LMDB.
serve: install kafka-up
	OK_ML_SERVING_PORT=$(SERVING_PORT) scripts/serve.sh

mlflow-ui: install
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(OK_ML_HOME)/mlflow/mlflow.db}" -h 127.0.0.1 -p $(MLFLOW_PORT) --workers 1

clean: kafka-down redis-down
	rm -rf $(OK_ML_HOME)
