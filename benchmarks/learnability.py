"""Can a small CNN learn the synthetic Raw-Microscopy classes on a CPU in minutes?

Writes (or reuses) a synthetic dataset, processes it with one of the paper's presets
in torch, trains a small CNN on 4×-downsampled views with a split by slide zone, and
prints JSON: test accuracy, the majority-class rate (what always guessing the most
common class scores), and the time taken. Issue #3 asks that the synthetic data be
learnable well above chance in a few CPU minutes and hard enough that the ISP matters.

Usage::

    python benchmarks/learnability.py [--n 600] [--epochs 15] [--preset bi,s,me] [--intensity 1.0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from torch import nn

import ispkit
from ispkit import Pipeline
from ispkit.data import RawMicroscopy, grouped_stratified_kfold, synthesize_microscopy


def small_cnn(classes: int) -> nn.Module:
    """Four conv blocks and a linear head: ~100k parameters."""
    blocks, width = [], 3
    for out in (16, 32, 64, 96):
        blocks += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        width = out
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="existing dataset root (default: write one to a temporary folder)")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--preset", default="bi,s,me")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-presets", nargs="*", default=[], help="also test on views from these presets (ISP drift)")
    args = parser.parse_args()
    ispkit.keep_freed_memory()
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    root = args.root or synthesize_microscopy(tempfile.mkdtemp(prefix="ispkit-synth-"), n=args.n, seed=args.seed)
    data = RawMicroscopy(root, args.intensity)
    raw = torch.stack([data[i][0][0] for i in range(len(data))])
    labels = torch.as_tensor(data.labels)

    def prepare(preset: str) -> torch.Tensor:
        with torch.inference_mode():
            views = Pipeline.preset(preset, camera=data.camera).to_torch()(raw)
            return nn.functional.avg_pool2d(views, 4)  # 64×64 keeps a CPU epoch to seconds

    views = prepare(args.preset)
    mean, std = views.mean((0, 2, 3), keepdim=True), views.std((0, 2, 3), keepdim=True)
    views = (views - mean) / std
    train, test = grouped_stratified_kfold(data.groups, data.labels, n_splits=5, seed=args.seed)[0]
    model = small_cnn(len(data.classes))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(train), generator=generator).split(32):
            index = torch.as_tensor(train)[batch]
            x = views[index].flip(-1) if torch.rand(1, generator=generator) < 0.5 else views[index]
            loss = nn.functional.cross_entropy(model(x), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(views[test]).argmax(1) == labels[test]).float().mean().item()
        drift = {p: round((model((prepare(p)[test] - mean) / std).argmax(1) == labels[test]).float().mean().item(), 3) for p in args.test_presets}
    majority = np.bincount(data.labels[test]).max() / len(test)
    print(json.dumps({
        "preset": args.preset, "intensity": args.intensity, "images": len(data), "classes": data.classes,
        "train": len(train), "test": len(test), "epochs": args.epochs,
        "test_accuracy": round(accuracy, 3), "test_accuracy_other_presets": drift,
        "majority_class_rate": round(float(majority), 3),
        "chance_uniform": round(1 / len(data.classes), 3), "seconds": round(time.perf_counter() - start, 1),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
