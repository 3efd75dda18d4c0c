#!/usr/bin/env bash
# Install ispkit with its test dependencies, the napari plugin (apps/napari_drift) with its Qt
# binding (PyQt6), and the third-party plugins in plugins/ into the current Python environment.
# torch and torchvision are installed first as a matching pair (torch 2.14.1, torchvision
# 0.29.1): an unpinned torchvision would pull whatever torch it was built for. A working
# torch + torchvision pair that is already installed (e.g. a CUDA build) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, torchvision" 2>/dev/null; then
    "$PY" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
"$PY" -m pip install --quiet -e ".[test]" -e "apps/napari_drift[testing]" \
    -e plugins/ispkit-plugin-optics -e plugins/ispkit-plugin-denoise
# The napari plugin's extras used to install PyQt5. qtpy prefers PyQt5 over PyQt6 when both are
# installed, and napari 0.9 warns at every start that its PyQt5 support is deprecated: drop
# that leftover so napari runs on PyQt6, the binding napari[qt] installs.
if "$PY" -m pip show --quiet PyQt5 >/dev/null 2>&1; then
    echo "install: removing PyQt5 (napari 0.9 deprecates it; PyQt6 is installed)"
    "$PY" -m pip uninstall --quiet --yes PyQt5 PyQt5-Qt5 PyQt5-sip
fi
