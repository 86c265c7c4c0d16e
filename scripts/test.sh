#!/usr/bin/env bash
# The test command (README): install the test requirements, lint, run the whole suite, then
# the self-test of the real app. Extra arguments go to pytest (e.g. -k store, -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
python3 -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
python3 -m ruff check .
python3 -m pytest -p no:cacheprovider "$@"
python3 main.py --self-test
