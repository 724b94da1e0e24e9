"""IsolationForest fitting and a flattened evaluator for fast streaming scoring.

scikit-learn's ``score_samples`` costs ~5 ms per call whatever the batch size (validation and
a joblib dispatch per tree), which caps one-point-at-a-time scoring near 200 points/s. The
forest here is flattened into a few numpy arrays and walked level by level for all rows and
trees at once; it reproduces ``-score_samples`` (the anomaly score in (0, 1]) to rounding.
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


@dataclass
class FlatForest:
    """All trees of an IsolationForest concatenated; leaves point to themselves."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_depth: np.ndarray
    roots: np.ndarray
    max_depth: int
    denominator: float

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score 2^(-E[h(x)]/c(psi)) per row of x, as -IsolationForest.score_samples."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)  # sklearn splits in float32
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.max_depth):
            values = np.take_along_axis(x, self.feature[node], axis=1)
            node = np.where(values <= self.threshold[node], self.left[node], self.right[node])
        return 2.0 ** (-self.leaf_depth[node].sum(axis=1) / self.denominator)


def flatten(forest: object) -> FlatForest:
    """Flatten a fitted sklearn IsolationForest into a FlatForest."""
    parts, offset, max_depth = [], 0, 0
    for est, feats in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = est.tree_
        is_leaf = t.children_left == -1
        idx = np.arange(t.node_count)
        depth = _node_depths(t.children_left, t.children_right)
        max_depth = max(max_depth, int(depth.max()))
        parts.append(
            (
                np.where(is_leaf, 0, np.asarray(feats)[np.maximum(t.feature, 0)]),
                np.where(is_leaf, np.inf, t.threshold),
                np.where(is_leaf, idx, t.children_left) + offset,
                np.where(is_leaf, idx, t.children_right) + offset,
                np.where(is_leaf, depth + average_path_length(t.n_node_samples), 0.0),
                offset,
            )
        )
        offset += t.node_count
    cols = list(zip(*parts, strict=True))
    psi = average_path_length(np.array([forest.max_samples_]))[0]
    return FlatForest(
        feature=np.concatenate(cols[0]).astype(np.intp),
        threshold=np.concatenate(cols[1]),
        left=np.concatenate(cols[2]).astype(np.intp),
        right=np.concatenate(cols[3]).astype(np.intp),
        leaf_depth=np.concatenate(cols[4]),
        roots=np.array(cols[5], dtype=np.intp),
        max_depth=max_depth,
        denominator=len(parts) * psi,
    )


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(left), dtype=float)
    for node in range(len(left)):  # sklearn numbers children after their parent
        if left[node] != -1:
            depth[left[node]] = depth[right[node]] = depth[node] + 1
    return depth


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
