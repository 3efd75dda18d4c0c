#!/usr/bin/env bash
# Regenerate the plugin's bundled classifier with ispkit's own CLI:
#   src/napari_drift/checkpoints/microscopy_small_cnn.pt
# = fold 0 of `ispkit synthesis run experiments/train_microscopy_classifier.yaml`
# (small_cnn, synthetic microscopy n=360 seed 0, trained on preset bi,s,me; ~1 min on 2 cores).
# Usage (from anywhere): apps/napari_drift/scripts/make_checkpoint.sh [run-folder]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
run="${1:-$repo/runs/train-microscopy-classifier}"
cd "$repo"
ispkit synthesis run experiments/train_microscopy_classifier.yaml --out "$run" --no-tracking
model="$run/units/bi,s,me/fold0/model.pt"
test -f "$model" || { echo "expected $model" >&2; exit 1; }
dest="$here/../src/napari_drift/checkpoints/microscopy_small_cnn.pt"
mkdir -p "$(dirname "$dest")"
cp "$model" "$dest"
echo "wrote $dest ($(du -h "$dest" | cut -f1))"
