#!/usr/bin/env bash
# Install everything, check the code (ruff's linter and formatter, mypy; configured in
# pyproject.toml), then run the whole test suite (unit, property, doctest, CLI, docs
# examples and the strict site build, the plugins in plugins/, and the napari plugin's
# widget tests under a virtual X display). Arguments, if any, go to pytest instead of the
# default paths. The checks stop the run before pytest starts when one fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_display.sh
PY=${PYTHON:-python3}

# check WHAT FIX COMMAND...: run COMMAND; if it fails, say which check failed and how to fix it.
check() {
    local what=$1 fix=$2
    shift 2
    echo "test.sh: $what"
    if ! "$@"; then
        echo "test.sh: $what failed; $fix" >&2
        exit 1
    fi
}
check "ruff check ." "fix the findings above (many with: $PY -m ruff check --fix .)" "$PY" -m ruff check .
check "ruff format --check ." "reformat with: $PY -m ruff format ." "$PY" -m ruff format --check .
check "mypy (strict on the core layer)" "fix the type errors above" "$PY" -m mypy

if [ $# -eq 0 ]; then
    set -- tests ispkit apps/napari_drift/tests \
        plugins/ispkit-plugin-optics/tests plugins/ispkit-plugin-optics/src \
        plugins/ispkit-plugin-denoise/tests plugins/ispkit-plugin-denoise/src
fi
if command -v xvfb-run >/dev/null; then
    env -u QT_QPA_PLATFORM xvfb-run -a "$PY" -m pytest "$@"
else
    "$PY" -m pytest "$@"
fi
