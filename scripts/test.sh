#!/usr/bin/env bash
# The test command (README): lint, then the whole suite, then the self-test of the real app.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
python3 -m ruff check .
python3 -m pytest "$@"
python3 main.py --self-test
