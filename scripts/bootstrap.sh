#!/usr/bin/env bash
# Create .venv (Python 3.11) and install dbt-rfm with the given extras, from the registries only.
# Usage: scripts/bootstrap.sh EXTRAS   (e.g. "cpu,demo" or "cpu,train,dev")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu,demo}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
if ! "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "dbt-rfm needs Python 3.11; found $("$py" --version 2>&1) ($py). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-$extras-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing dbt-rfm[$extras] into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
