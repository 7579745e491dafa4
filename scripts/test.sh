#!/usr/bin/env bash
# The test command: sets up .venv (idempotent) and runs the default test suite (slow tests
# excluded). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
# pytest exits 5 when a marker selects no tests: nothing failed
if [ "$rc" -eq 5 ]; then echo "0 passed, 0 failed"; exit 0; fi
exit "$rc"
