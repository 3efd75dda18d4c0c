"""Cross-validation folds that keep every source together.

The released code of the paper split Raw-Drone tiles at random, so tiles of one drone
frame could land in both training and test data, and neighbouring crops of one slide
zone likewise. ispkit splits by *group* (the source frame or slide zone): each group
goes whole into exactly one test fold, and the folds are balanced in size and, when
labels are given, in class proportions.

The assignment is greedy and deterministic for a seed: groups are visited from the
largest to the smallest (ties in a seeded random order), and each goes to the fold
where adding it increases the squared relative deviation of the fold's class counts
from an even share of every class the least, with fold size as the tie-breaker.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["grouped_stratified_kfold"]


def grouped_stratified_kfold(
    groups: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    n_splits: int = 5,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split samples into ``n_splits`` folds with no group in two folds.

    Parameters
    ----------
    groups
        Source of each sample (slide zone, drone frame); samples of one group always
        share a fold.
    labels
        Class of each sample, for stratification; ``None`` balances fold sizes only
        (segmentation).
    n_splits
        Number of folds, at least 2 and at most the number of groups.
    seed
        A non-negative integer that orders groups of equal size (visited in a random
        order drawn from ``numpy.random.default_rng(seed)``); the same inputs and seed
        give the same folds, and other seeds give other folds wherever groups of equal
        size exist (if all groups differ in size the seed changes nothing).

    Returns
    -------
    list of (train_indices, test_indices)
        One pair per fold; the test sets partition ``range(len(groups))``.

    Examples
    --------
    >>> folds = grouped_stratified_kfold(["a", "a", "b", "c", "c", "d"], n_splits=2)
    >>> sorted(sorted(test.tolist()) for _, test in folds)
    [[0, 1, 5], [2, 3, 4]]
    """
    group_ids = _codes(groups, "groups")
    n = len(group_ids)
    label_ids = np.zeros(n, dtype=int) if labels is None else _codes(labels, "labels")
    if len(label_ids) != n:
        raise InputError(f"grouped_stratified_kfold: {n} groups but {len(label_ids)} labels; give one of each per sample")
    n_groups = group_ids.max() + 1 if n else 0
    if not isinstance(n_splits, int) or n_splits < 2:
        raise InputError(f"grouped_stratified_kfold: n_splits must be an integer >= 2, got {n_splits!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"grouped_stratified_kfold: seed must be an integer >= 0, got {seed!r}")
    if n_groups < n_splits:
        raise InputError(f"grouped_stratified_kfold: {n_splits} folds need at least {n_splits} groups, got {n_groups}; use fewer folds or finer groups")
    n_classes = label_ids.max() + 1
    counts = np.zeros((n_groups, n_classes))
    np.add.at(counts, (group_ids, label_ids), 1)
    target = counts.sum(axis=0) / n_splits  # an even share of every class per fold
    order = np.random.default_rng(seed).permutation(n_groups)
    order = order[np.argsort(-counts.sum(axis=1)[order], kind="stable")]
    fold_counts = np.zeros((n_splits, n_classes))
    fold_of_group = np.empty(n_groups, dtype=int)
    scale = np.maximum(target, 1.0)
    for g in order:
        after = fold_counts + counts[g]
        deviation_after = (((after - target) / scale) ** 2).sum(axis=1)
        deviation_before = (((fold_counts - target) / scale) ** 2).sum(axis=1)
        cost = deviation_after - deviation_before + 1e-9 * after.sum(axis=1)  # smaller fold wins ties
        best = int(np.argmin(cost))
        fold_of_group[g] = best
        fold_counts[best] = after[best]
    fold_of_sample = fold_of_group[group_ids]
    indices = np.arange(n)
    return [(indices[fold_of_sample != k], indices[fold_of_sample == k]) for k in range(n_splits)]


def _codes(values: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    """Integer codes 0..K-1 of ``values`` in order of first appearance."""
    codes: dict[Any, int] = {}
    try:
        return np.array([codes.setdefault(v, len(codes)) for v in values], dtype=int)
    except TypeError:
        raise InputError(f"grouped_stratified_kfold: {what} must be hashable values (strings, ints), got {type(values).__name__}") from None
