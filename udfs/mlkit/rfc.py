"""AI4I 2020 machine-failure classifier: features, training and the saved predictor.

``feature_matrix`` is the single place raw inputs become model features, shared by training
and the UDF, so the two cannot drift apart. numpy/scikit-learn are imported lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

RAW_FEATURES = (
    "product_type",
    "air_temperature",
    "process_temperature",
    "rotational_speed",
    "torque",
    "tool_wear",
)
"""Raw inputs, in column order; also the default field names the UDF reads."""

ENGINEERED = ("power", "temp_diff", "wear_torque", "speed_per_diff")
FEATURES = RAW_FEATURES + ENGINEERED
FLOAT32_MAX = 3.4028234663852886e38
"""scikit-learn's trees compare in float32: a feature beyond this cannot be scored."""

AI4I_COLUMNS = {
    "air_temperature": "Air temperature [K]",
    "process_temperature": "Process temperature [K]",
    "rotational_speed": "Rotational speed [rpm]",
    "torque": "Torque [Nm]",
    "tool_wear": "Tool wear [min]",
}
PRODUCT_TYPES = {"L": 0.0, "M": 1.0, "H": 2.0}
TARGET = "Machine failure"
SPLIT_SEED, TEST_SIZE = 20, 0.2


def feature_matrix(rows: Any) -> np.ndarray:
    """Model features from an (n, 6) array of RAW_FEATURES.

    The engineered columns follow the failure mechanisms documented with AI4I: power
    (torque x angular speed, power failures), process-air temperature difference and its
    ratio to speed (heat dissipation failures), and wear x torque (overstrain failures).
    """
    import numpy as np

    raw = np.asarray(rows, dtype=float)
    if raw.ndim != 2 or raw.shape[1] != len(RAW_FEATURES):
        raise ValueError(f"expected an (n, {len(RAW_FEATURES)}) array, got {raw.shape}")
    _, air, process, speed, torque, wear = raw.T
    diff = process - air
    power = torque * speed * 2.0 * math.pi / 60.0
    speed_per_diff = speed / np.where(np.abs(diff) < 1e-6, 1e-6, diff)
    return np.column_stack([raw, power, diff, wear * torque, speed_per_diff])


def ai4i_raw(df: Any) -> tuple[np.ndarray, np.ndarray]:
    """RAW_FEATURES matrix and failure labels from the AI4I data frame."""
    import numpy as np

    types = df["Type"].map(PRODUCT_TYPES)
    if types.isna().any():
        raise ValueError("unknown product type in AI4I data")
    cols = [types.to_numpy(dtype=float)]
    cols += [df[AI4I_COLUMNS[name]].to_numpy(dtype=float) for name in RAW_FEATURES[1:]]
    return np.column_stack(cols), df[TARGET].to_numpy(dtype=int)


def unscorable(raw: np.ndarray) -> dict[int, str]:
    """Rows of a RAW_FEATURES matrix the forest cannot score, each with its reason.

    scikit-learn refuses a whole array for one NaN, infinity or float32 overflow, so
    these rows are taken out first and the others scored exactly as on their own.
    """
    import numpy as np

    with np.errstate(all="ignore"):
        features = feature_matrix(raw)
        bad = ~(np.abs(features) <= FLOAT32_MAX)  # NaN compares False
    reasons = {}
    for row in np.flatnonzero(bad.any(axis=1)).tolist():
        column = int(np.flatnonzero(bad[row])[0])
        value = features[row, column]
        kind = "not a finite number" if not math.isfinite(value) else "too large for the model"
        reasons[row] = f"{FEATURES[column]} is {value:g}: {kind} (|value| <= {FLOAT32_MAX:.3g})"
    return reasons


@dataclass
class FailurePredictor:
    """Forest + decision threshold + the feature list it was trained on."""

    forest: Any
    threshold: float
    features: tuple[str, ...] = FEATURES
    raw_features: tuple[str, ...] = RAW_FEATURES
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        """(labels, failure probabilities) for an (n, 6) array of RAW_FEATURES."""
        proba = self.forest.predict_proba(feature_matrix(raw))[:, 1]
        return (proba >= self.threshold).astype(int), proba


@dataclass(frozen=True)
class RfcParams:
    """Forest settings; small trees keep inference well above 50k rows/s."""

    n_estimators: int = 100
    max_depth: int = 12
    min_samples_leaf: int = 1
    class_weight: str | None = "balanced_subsample"
    seed: int = 0


def split(raw: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """The fixed stratified 80/20 split (random_state=20) used for the F1 figure."""
    from sklearn.model_selection import train_test_split

    return train_test_split(raw, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)


def oob_threshold(y: np.ndarray, oob_proba: np.ndarray) -> float:
    """Threshold maximising out-of-bag F1 on the training data (never the test split)."""
    import numpy as np

    best, best_f1 = 0.5, -1.0
    for t in np.round(np.arange(0.10, 0.91, 0.02), 2):
        pred = oob_proba >= t
        tp = float(np.sum(pred & (y == 1)))
        f1 = 2 * tp / max(float(pred.sum() + (y == 1).sum()), 1.0)
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def fit(raw: np.ndarray, y: np.ndarray, params: RfcParams | None = None) -> FailurePredictor:
    """Train the forest (out-of-bag on) and pick the threshold from its OOB predictions."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    p = params or RfcParams()
    forest = RandomForestClassifier(
        n_estimators=p.n_estimators,
        max_depth=p.max_depth,
        min_samples_leaf=p.min_samples_leaf,
        class_weight=p.class_weight,
        oob_score=True,
        random_state=p.seed,
        n_jobs=1,
    )
    forest.fit(feature_matrix(raw), y)
    oob = np.nan_to_num(forest.oob_decision_function_[:, 1])
    return FailurePredictor(forest, oob_threshold(y, oob))


def evaluate(model: FailurePredictor, raw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1 of the failure class and the confusion matrix [[tn, fp], [fn, tp]]."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

    pred, _ = model.predict(raw)
    return {
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred)),
        "f1": float(f1_score(y, pred)),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "test_rows": len(y),
    }
