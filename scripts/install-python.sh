#!/usr/bin/env bash
# Creates .venv with the pinned third-party packages and every Ferry package (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip uv==0.13.9
.venv/bin/uv pip install --quiet --python .venv/bin/python -r requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps \
  -e shared -e services/inventory -e services/planner -e services/transfer \
  -e services/kubevirt-writer -e cli -e peers/launch -e tests/peers
