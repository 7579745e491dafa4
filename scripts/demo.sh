#!/usr/bin/env bash
# The main job: sets up .venv (idempotent) and runs `kyokan demo`: the whole pipeline on the bundled
# Japanese sample with packaged models (Gemma 3 270M through SFT → DPO on CPU), report in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/kyokan demo "$@"
