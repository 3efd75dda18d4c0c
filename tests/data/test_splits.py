"""Grouped, stratified k-fold splits."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ispkit.data.splits import grouped_stratified_kfold
from ispkit.errors import InputError

RNG = np.random.default_rng(5)
# 60 slide zones of 1-12 crops, nine imbalanced classes (as Raw-Microscopy: rare NGB, BAS)
ZONES = np.repeat(np.arange(60), RNG.integers(1, 13, 60))
CLASSES = np.array(["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"])
P = np.array([1.91, 5.74, 17.34, 3.19, 24.47, 20.32, 0.85, 22.98, 3.19]) / 100
LABELS = CLASSES[RNG.choice(9, size=len(ZONES), p=P / P.sum())]


def test_test_sets_partition_the_samples_and_groups_never_straddle():
    folds = grouped_stratified_kfold(ZONES, LABELS, n_splits=5, seed=0)
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests.tolist()) == list(range(len(ZONES)))
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(ZONES)
        assert not set(ZONES[train]) & set(ZONES[test])


def test_folds_are_balanced_in_size_and_class():
    folds = grouped_stratified_kfold(ZONES, LABELS, n_splits=5, seed=0)
    sizes = np.array([len(test) for _, test in folds])
    assert sizes.max() - sizes.min() <= 12  # at most about one zone apart
    for cls in CLASSES:  # every class within 2 samples of an even share, rare ones included
        share = (LABELS == cls).sum() / 5
        assert all(abs((LABELS[test] == cls).sum() - share) <= 2 for _, test in folds), cls


def test_deterministic_by_seed():
    a = grouped_stratified_kfold(ZONES, LABELS, seed=3)
    b = grouped_stratified_kfold(ZONES, LABELS, seed=3)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))


def test_unlabelled_groups_balance_sizes():
    frames = np.repeat(np.arange(12), [60, 55, 50, 48, 46, 44, 40, 38, 35, 30, 30, 72])  # 548 tiles, 12 frames
    folds = grouped_stratified_kfold(frames, n_splits=4)
    sizes = sorted(len(test) for _, test in folds)
    assert sum(sizes) == 548 and sizes[-1] - sizes[0] <= 10
    assert all(not set(frames[tr]) & set(frames[te]) for tr, te in folds)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": ["a", "b"], "n_splits": 3}, "3 folds need at least 3 groups, got 2"),
        ({"groups": ["a", "b", "c"], "n_splits": 1}, "n_splits must be an integer >= 2"),
        ({"groups": ["a", "b", "c"], "labels": [0, 1]}, "3 groups but 2 labels"),
        ({"groups": [[1], [2], [3]], "n_splits": 2}, "must be hashable"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        grouped_stratified_kfold(**kwargs)


def _partition(groups: np.ndarray, folds) -> frozenset[frozenset]:
    """The folds as a set of sets of groups: independent of the folds' order."""
    return frozenset(frozenset(groups[test].tolist()) for _, test in folds)


def _class_imbalance(folds) -> float:
    """Sum over folds and classes of the squared deviation from an even share, relative to the share."""
    share = np.array([(LABELS == c).sum() / len(folds) for c in CLASSES])
    counts = np.array([[(LABELS[test] == c).sum() for c in CLASSES] for _, test in folds])
    return float((((counts - share) / np.maximum(share, 1)) ** 2).sum())


def test_the_seed_changes_the_folds_and_every_seed_keeps_groups_whole_and_classes_balanced():
    """On the microscopy-like layout (60 zones of 1-12 crops, so many zones of equal size) the seed orders
    the ties: ten seeds give (nearly) ten different partitions of the zones, each one grouped and stratified."""
    partitions = set()
    for seed in range(10):
        folds = grouped_stratified_kfold(ZONES, LABELS, n_splits=5, seed=seed)
        partitions.add(_partition(ZONES, folds))
        assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(len(ZONES)))
        assert all(not set(ZONES[train]) & set(ZONES[test]) for train, test in folds), seed
        sizes = [len(test) for _, test in folds]
        assert max(sizes) - min(sizes) <= 12, (seed, sizes)
        balanced = _class_imbalance(folds)
        unstratified = _class_imbalance(grouped_stratified_kfold(ZONES, None, n_splits=5, seed=seed))
        assert balanced < 1.0 and 5 * balanced < unstratified, (seed, balanced, unstratified)
    assert len(partitions) >= 8  # ten on this layout; a seed that is ignored gives one


def test_the_seed_only_breaks_ties_of_group_size():
    frames = np.repeat(np.arange(6), [60, 50, 40, 30, 20, 10])  # no two frames of one size: nothing to order
    assert len({_partition(frames, grouped_stratified_kfold(frames, n_splits=3, seed=s)) for s in range(5)}) == 1


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_bad_seed(seed):
    with pytest.raises(InputError, match=rf"seed must be an integer >= 0, got {re.escape(repr(seed))}"):
        grouped_stratified_kfold(ZONES, LABELS, seed=seed)
