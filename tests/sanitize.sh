#!/usr/bin/env bash
# Builds the engine with AddressSanitizer + UndefinedBehaviorSanitizer in its
# own virtual environment, from a copy of the tree (so no sanitized object
# reaches the normal build), and runs the test suite on it. Any report fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-sanitize"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && tar --exclude='./.venv*' --exclude='./build' --exclude='*.so' \
    --exclude='__pycache__' -cf - .) | tar -xf - -C "$WORK"
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# build tools, then the runtime and test dependencies that pyproject.toml lists
"$VENV/bin/python" -m pip install --quiet setuptools wheel "cffi>=1.16" scipy-openblas32
"$VENV/bin/python" -m pip install --quiet $("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(" ".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)
EMBER_SANITIZE=address,undefined "$VENV/bin/python" -m pip install --quiet \
    --no-build-isolation --no-deps --force-reinstall "$WORK"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$WORK"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
