#!/usr/bin/env bash
# The test command: install (idempotent) then run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
