#!/usr/bin/env bash
# Install everything, then run the main job: a small drift-synthesis study on synthetic
# Raw-Microscopy data (all twelve data models of the paper, a CPU-sized CNN, 3 folds, the
# ten common corruptions), written to out/synthesis with report.html. Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
"${PYTHON:-python3}" -m ispkit synthesis run experiments/synthesis_microscopy_small.yaml --out out/synthesis "$@"
