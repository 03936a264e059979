#!/usr/bin/env bash
# The test command: install, lint (ruff, mypy), pytest, then `dbt build` of integration_tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh cpu,train,dev
export PATH="$PWD/.venv/bin:$PATH"
echo "[test] ruff"; ruff check . && ruff format --check .
echo "[test] mypy"; mypy runtime/rfm_runtime dbt_rfm bench
echo "[test] pytest"
set +e; python -m pytest -q "$@"; rc=$?; set -e
# pytest exits 5 when it collected no test: that is a failure here.
[ "$rc" -eq 0 ] || { echo "[test] pytest failed (exit $rc)"; exit 1; }
echo "[test] dbt build integration_tests"
cd integration_tests
export DBT_PROFILES_DIR="$PWD"
dbt deps --quiet
dbt build
echo "[test] re-run the incremental predictions: the grain test must still pass"
dbt build --select rfm_predictions
