#!/usr/bin/env bash
# Recompiles requirements.lock from requirements.in (run after changing requirements.in).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock
