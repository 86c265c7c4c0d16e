#!/usr/bin/env bash
# CI, after the test suite: build the single-file app with tiny model packs bundled, run its
# own --self-test offscreen (packs required), then the tests that need the binary. Any failure
# fails CI. Timings go to build/ci-frozen-times.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
mkdir -p build
times=build/ci-frozen-times.txt
: > "$times"
step() {  # step NAME COMMAND...: run, time, record
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name"
  "$@"
  echo "$name: $((SECONDS - t0)) s" | tee -a "$times"
}

step "install build requirements" \
  python3 -m pip install --quiet --disable-pip-version-check -r requirements-build.txt
rm -rf build/ci-packs
step "export tiny owlv2 pack" \
  python3 build_scripts/export_models.py --family owlv2 --random tiny --out build/ci-packs/owlv2-tiny
step "export tiny sam pack" \
  python3 build_scripts/export_models.py --family sam --random tiny --out build/ci-packs/sam-tiny
step "build onefile (PyInstaller + bundle check)" \
  python3 build_scripts/build_onefile.py --mode onefile --packs build/ci-packs \
    --summary build/build-summary-ci.json
data=$(mktemp -d)
cache=$(mktemp -d)  # the single file unpacks its app here once (first start), not in ~/.cache
trap 'rm -rf "$data" "$cache"' EXIT
step "self-test of the binary (first start: unpacks the app)" \
  env FIELDMARK_DATA_DIR="$data" FIELDMARK_CACHE_DIR="$cache" dist/fieldmark --self-test --require-packs \
    --report build/selftest-frozen.json
step "tests of the binary" \
  python3 -m pytest -p no:cacheprovider -q tests/frozen
echo "frozen build OK: $(du -h dist/fieldmark | cut -f1) dist/fieldmark"
