"""IsolationForest fitting and a flattened evaluator for fast streaming scoring.

scikit-learn's ``score_samples`` costs ~5 ms per call whatever the batch size (validation and
a joblib dispatch per tree), which caps one-point-at-a-time scoring near 200 points/s. The
forest here is laid out as numpy arrays in heap order and walked level by level for all rows
and trees at once; it reproduces ``-score_samples`` (the anomaly score in (0, 1]) to rounding.
This module imports numpy at the top: import it lazily from UDF-facing modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected unsuccessful-search depth c(n) of a binary search tree of n samples."""
    n = np.asarray(n, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


MAX_HEAP_DEPTH = 12
"""Deepest tree the heap layout takes (2^12 leaves per tree); max_samples <= 4096 stays under."""


@dataclass
class FlatForest:
    """All trees of an IsolationForest as complete binary trees in heap order.

    Node p of a tree has children 2p+1 and 2p+2, so walking needs no child arrays: per
    level, one feature and one threshold lookup per row and tree. A leaf above the bottom
    level passes its rows down the left edge (threshold +inf) to the bottom slot that
    holds its path length.
    """

    feature: np.ndarray  # (trees * internal,) column tested at each internal node
    threshold: np.ndarray  # (trees * internal,) go right when the value is above it
    path_length: np.ndarray  # (trees * 2^depth,) depth + c(samples) of each bottom slot
    trees: int
    depth: int
    denominator: float

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score 2^(-E[h(x)]/c(psi)) per row of x, as -IsolationForest.score_samples."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)  # sklearn splits in float32
        flat = x.ravel()
        row_start = (np.arange(len(x), dtype=np.intp) * x.shape[1])[:, None]
        internal = 2**self.depth - 1
        tree_start = np.arange(self.trees, dtype=np.intp) * internal
        pos = np.zeros((len(x), self.trees), dtype=np.intp)
        for _ in range(self.depth):  # one level of every tree for every row at once
            node = pos + tree_start
            go_right = flat[row_start + self.feature[node]] > self.threshold[node]
            pos *= 2
            pos += 1
            pos += go_right
        bottom = pos - internal + tree_start + np.arange(self.trees, dtype=np.intp)
        return 2.0 ** (-self.path_length[bottom].sum(axis=1) / self.denominator)


def flatten(forest: object) -> FlatForest:
    """Lay a fitted sklearn IsolationForest out as a FlatForest."""
    trees = list(zip(forest.estimators_, forest.estimators_features_, strict=True))
    depth = max(int(est.tree_.max_depth) for est, _ in trees)
    if depth > MAX_HEAP_DEPTH:
        raise ValueError(f"trees {depth} deep: the heap layout takes at most {MAX_HEAP_DEPTH} "
                         "(max_samples <= 4096)")
    internal = 2**depth - 1
    feature = np.zeros((len(trees), internal), dtype=np.intp)
    threshold = np.full((len(trees), internal), np.inf)
    path_length = np.zeros((len(trees), internal + 1))
    for k, (est, feats) in enumerate(trees):
        t = est.tree_
        pos = _heap_positions(t.children_left, t.children_right)
        level = np.floor(np.log2(pos + 1)).astype(np.intp)
        split = t.children_left != -1
        feature[k, pos[split]] = np.asarray(feats)[t.feature[split]]
        threshold[k, pos[split]] = t.threshold[split]
        leaf = ~split
        left_edge = (pos[leaf] + 1) * 2 ** (depth - level[leaf]) - 1  # bottom slot below
        path_length[k, left_edge - internal] = (level[leaf]
                                                + average_path_length(t.n_node_samples[leaf]))
    psi = average_path_length(np.array([forest.max_samples_]))[0]
    return FlatForest(feature.ravel(), threshold.ravel(), path_length.ravel(), len(trees),
                      depth, len(trees) * psi)


def _heap_positions(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    pos = np.zeros(len(left), dtype=np.intp)
    for node in range(len(left)):  # sklearn numbers children after their parent
        if left[node] != -1:
            pos[left[node]] = 2 * pos[node] + 1
            pos[right[node]] = 2 * pos[node] + 2
    return pos


def fit_forest(
    rows: np.ndarray, n_estimators: int, max_samples: int, seed: int, background: float = 0.0
) -> FlatForest:
    """Fit a seeded IsolationForest on rows and return its flat form (deterministic).

    background > 0 adds that fraction of uniform points in a box `BOX_SCALE` times wider than
    the data around its median. A plain IsolationForest only splits inside the training range,
    so every point beyond it scores like the most extreme training point (the score
    saturates); sparse background points let trees place splits out there, so the score keeps
    growing with the distance from normal data.
    """
    import sklearn
    from sklearn.ensemble import IsolationForest

    rows = np.asarray(rows, dtype=float)
    rng = np.random.default_rng(seed)
    if background > 0:
        rows = np.vstack([rows, background_points(rows, int(background * len(rows)), rng)])
    forest = IsolationForest(
        n_estimators=n_estimators,
        max_samples=min(max_samples, len(rows)),
        random_state=seed,
        n_jobs=1,
    )
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        forest.fit(rows)  # our own settings and finite rows: skip sklearn's per-tree checks
    return flatten(forest)


BOX_SCALE = 3.0


def background_points(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform points in a box BOX_SCALE times the data's reach from its median."""
    center = np.median(rows, axis=0)
    reach = np.maximum(np.abs(rows - center).max(axis=0), 1e-6) * BOX_SCALE
    return rng.uniform(center - reach, center + reach, size=(n, rows.shape[1]))
