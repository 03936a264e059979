#!/usr/bin/env bash
# The demo: install, then `dbt build` the nycflights13 project on an embedded DuckDB file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh cpu,demo
export PATH="$PWD/.venv/bin:$PATH"
cd integration_tests
export DBT_PROFILES_DIR="$PWD"
dbt deps --quiet
dbt build "$@"
dbt run-operation dbt_rfm.rfm_where
