#!/usr/bin/env bash
# Install everything, then run the whole test suite (unit, property, doctest, CLI, docs
# examples and the strict site build, the plugins in plugins/, and the napari plugin's
# widget tests under a virtual X display).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_display.sh
PY=${PYTHON:-python3}
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
