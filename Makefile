# mlx — `make demo` and `make test` work from a fresh clone on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MLX    := $(VENV)/bin/mlx
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,mlflow
DEMO   := build/demo

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

## demo: set up, then validate → plan → apply the quickstart on embedded defaults, serve it,
## send it requests, retrain, walk the canary rollout to completion on generated traffic,
## then drive the drift monitor: a shift it injects is found, alerted once and resolved
demo: $(STAMP)
	rm -rf $(DEMO) && mkdir -p build && cp -r examples/quickstart $(DEMO)
	cd $(DEMO) && ../../$(PY) train.py
	$(MLX) -C $(DEMO) validate
	$(MLX) -C $(DEMO) plan
	$(MLX) -C $(DEMO) apply --yes
	@echo "--- a second plan, after apply:"
	$(MLX) -C $(DEMO) plan --detailed-exitcode
	$(PY) $(DEMO)/demo.py --mlx $(MLX)
	$(MLX) -C $(DEMO) history

## test: set up, then run every test (PostgreSQL tests need 127.0.0.1:5432 or MLX_TEST_PG_URL)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## bench: every benchmark, each printing ratios against its baseline measured in the same run
## (the gateway one needs wrk: apt-get install -y wrk)
bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS),bench]'
	$(PY) bench/plan_scale.py
	$(PY) bench/eval_gate.py
	$(PY) bench/inference_log.py
	$(PY) bench/streaming.py
	$(PY) bench/drift.py
	@if command -v wrk >/dev/null; then $(PY) bench/gateway.py; \
	else echo "bench/gateway.py skipped: wrk is not installed (apt-get install -y wrk)"; fi

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
