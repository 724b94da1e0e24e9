"""`make nab`: NAB scores of the real ads_model UDF on the corpus, beside two references.

The UDF runs with its DEFAULT options over the protocol (``udfkit.replay``), one process
per file, on every file of training_data_sets/nab (46 NAB series). Two reference detectors
run in the same process on the same files: the windowed Gaussian (|z| > 4 against the last
6,400 points, one alert per run) and the same with at most one alert per 288 points. Prints
per-file and per-category tables, whether each target of issue #8 holds, and saves a PNG for
the five files where ads_model scores worst into out/nab/ (git-ignored).

Scoring (NAB's sweeper, standard profile, from its published definitions):

- Weights: A_TP = 1.0, A_FP = -0.11, A_FN = -1.0.
- ``scaled_sigmoid(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` when ``y > 3``.
- An alert at row index ``i`` inside a window ``[l, r]`` (rows whose timestamp lies in the
  labelled window, ends included) has relative position ``y = -(r - i + 1) / (r - l + 1)``
  (``-1`` at the window start, near ``0`` at its end). Only the FIRST alert of a window counts,
  scoring ``A_TP * scaled_sigmoid(y) / scaled_sigmoid(-1)`` (1.0 at the window start).
  Later alerts in the same window score nothing.
- An alert outside every window is a false positive scoring ``-A_FP * scaled_sigmoid(y)``
  with ``y = (i - r_prev) / (w_prev - 1)``, distance from the end ``r_prev`` of the preceding
  window of width ``w_prev`` (so a late alert just after a window costs little), and
  ``scaled_sigmoid`` taken as ``-1`` (full -0.11) when no window precedes it.
- Each window without an alert adds ``A_FN`` (-1.0).
- Probation: the first ``min(floor(0.15 * n), 750)`` rows of a file; alerts there are ignored.
- Normalisation, over the summed raw scores of a set of files: ``100 * (raw - null) /
  (perfect - null)`` with ``null = A_FN * windows`` (never alerting) and ``perfect = A_TP *
  windows``. A set without windows (a category of anomaly-free files) has only its raw score.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "udfs"))

from mlkit.nabdata import load_series, load_windows  # noqa: E402

NAB_DIR = ROOT / "training_data_sets" / "nab"
OUT_DIR = ROOT / "out" / "nab"
A_TP, A_FP, A_FN = 1.0, -0.11, -1.0
PROBATION_FRACTION, PROBATION_MAX = 0.15, 750
TARGET_SCORE, TARGET_FP_PER_2000, TARGET_HIT = 60.0, 1.0, 0.75
ADS, GAUSS, GAUSS_288 = "ads_model", "gaussian |z|>4", "gaussian, 1 per 288"

Detector = Callable[[list[int], np.ndarray], list[int]]


@dataclass
class FileScore:
    """Outcome of one detector on one file."""

    name: str
    windows: int
    hit: int
    false_alerts: int
    raw: float
    points: int

    @property
    def normalised(self) -> float | None:
        """NAB normalised score of this file alone (None without windows)."""
        return normalise(self.raw, self.windows) if self.windows else None

    @property
    def fp_per_2000(self) -> float:
        return 2000.0 * self.false_alerts / self.points


def scaled_sigmoid(y: float) -> float:
    """NAB's reward curve: ~1 well before a window end, 0 at it, towards -1 after."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_length(n: int) -> int:
    """Rows a detector may learn from without being scored (NAB rule)."""
    return min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX)


def normalise(raw: float, windows: int) -> float:
    """Map a raw score so never alerting is 0 and perfect alerting is 100."""
    null, perfect = A_FN * windows, A_TP * windows
    return 100.0 * (raw - null) / (perfect - null)


def window_indices(ts: Sequence[int], windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row index range [l, r] covered by each window."""
    arr = np.asarray(ts, dtype=np.int64)
    return [(int(np.searchsorted(arr, a, side="left")),
             int(np.searchsorted(arr, b, side="right")) - 1) for a, b in windows]


def score_file(
    name: str, ts: Sequence[int], alert_ts: Sequence[int], windows: list[tuple[int, int]]
) -> FileScore:
    """Raw NAB score of alert timestamps on one file."""
    probation = probation_length(len(ts))
    spans = window_indices(ts, windows)
    arr = np.asarray(ts, dtype=np.int64)
    idx = sorted({int(np.searchsorted(arr, t, side="left")) for t in alert_ts})
    max_tp = scaled_sigmoid(-1.0)
    raw, hit_windows, false_alerts = 0.0, set(), 0
    for i in idx:
        if i < probation or i >= len(ts):
            continue
        inside = [k for k, (lo, hi) in enumerate(spans) if lo <= i <= hi]
        if inside:
            k = inside[0]
            if k not in hit_windows:
                lo, hi = spans[k]
                raw += A_TP * scaled_sigmoid(-(hi - i + 1) / (hi - lo + 1)) / max_tp
                hit_windows.add(k)
            continue
        false_alerts += 1
        prev = [(lo, hi) for lo, hi in spans if hi < i]
        if prev:
            lo, hi = prev[-1]
            raw += -A_FP * scaled_sigmoid((i - hi) / max(hi - lo, 1))
        else:
            raw += A_FP
    raw += A_FN * (len(spans) - len(hit_windows))
    return FileScore(name, len(spans), len(hit_windows), false_alerts, raw, len(ts))


# --------------------------------------------------------------------------- detectors


def ads_model_udf(ts: list[int], values: np.ndarray) -> list[int]:
    """The real ads_model UDF with its default options over the protocol (udfkit.replay):
    alerts are the points it marks `anomaly_start`."""
    from udfkit import udf_pb2
    from udfkit.replay import replay, udf_command

    points = []
    for t, v in zip(ts, values.tolist(), strict=True):
        point = udf_pb2.Point(time=t, name="nab")
        point.fieldsDouble["value"] = v
        points.append(point)
    out, _ = replay(udf_command("ads_model", None), points, {})
    return [point.time for point in out if point.fieldsBool.get("anomaly_start")]


def windowed_gaussian(ts: list[int], values: np.ndarray, every: int = 0) -> list[int]:
    """Reference: |z| > 4 against the last 6,400 points (NAB's windowSize), one alert per
    run of flagged points; with `every`, at most one alert per `every` points."""
    window, out, in_run, last = 6400, [], False, -every
    csum, csq = np.cumsum(values), np.cumsum(values**2)
    for i in range(1, len(values)):
        lo = max(0, i - window)
        n = i - lo
        s = csum[i - 1] - (csum[lo - 1] if lo else 0.0)
        q = csq[i - 1] - (csq[lo - 1] if lo else 0.0)
        mean = s / n
        std = math.sqrt(max(q / n - mean * mean, 0.0))
        flag = std > 0 and abs(values[i] - mean) / std > 4.0
        if flag and not in_run and i - last >= every:
            out.append(ts[i])
            last = i
        in_run = flag
    return out


DETECTORS: dict[str, Detector] = {
    ADS: ads_model_udf,
    GAUSS: windowed_gaussian,
    GAUSS_288: lambda ts, values: windowed_gaussian(ts, values, every=288),
}


# --------------------------------------------------------------------------- reporting


def totals(scores: Sequence[FileScore]) -> dict[str, float]:
    """Summed counts and raw score over files, and the normalised score (None without
    windows)."""
    windows = sum(s.windows for s in scores)
    raw = sum(s.raw for s in scores)
    return {"windows": windows, "hit": sum(s.hit for s in scores),
            "false_alerts": sum(s.false_alerts for s in scores), "raw": raw,
            "score": normalise(raw, windows) if windows else None}


def shown(total: dict[str, float]) -> str:
    """A set's score: normalised, or raw for a set without windows."""
    if total["score"] is None:
        return f"raw {total['raw']:+.2f}"
    return f"{total['score']:.1f}"


def print_files(results: dict[str, list[FileScore]]) -> None:
    """One row per file: hits, false alerts and score of each detector."""
    head = "".join(f" | {label[:22]:>22}" for label in results)
    print(f"\n{'file':40}{head}\n{'':40}" + " | hit   FP  NAB score" * len(results))
    for row in zip(*results.values(), strict=True):
        cells = "".join(
            f" | {s.hit:>2}/{s.windows:<2} {s.false_alerts:>4} "
            f"{'-' if s.normalised is None else f'{s.normalised:.1f}':>9}" for s in row)
        print(f"{row[0].name[:40]:40}{cells}")


def print_categories(results: dict[str, list[FileScore]], categories: dict[str, list[str]]
                     ) -> dict[str, dict[str, dict[str, float]]]:
    """Per-category totals of each detector; returns them for the target check."""
    by_cat: dict[str, dict[str, dict[str, float]]] = {}
    print(f"\n{'category':24}" + "".join(f" | {label[:22]:>22}" for label in results))
    for cat, names in [*categories.items(), ("ALL", None)]:
        by_cat[cat] = {label: totals([s for s in scores if names is None or s.name in names])
                       for label, scores in results.items()}
        cells = "".join(f" | {t['hit']:>3}/{t['windows']:<3} {t['false_alerts']:>4} "
                        f"{shown(t):>9}" for t in by_cat[cat].values())
        print(f"{cat:24}{cells}")
    return by_cat


def check_targets(results: dict[str, list[FileScore]],
                  by_cat: dict[str, dict[str, dict[str, float]]]) -> bool:
    """Print each target of issue #8 that `make nab` can measure, and whether it holds."""
    ads = results[ADS]
    overall = by_cat["ALL"][ADS]
    worst = max(ads, key=lambda s: s.fp_per_2000)
    behind = [cat for cat, t in by_cat.items() if cat != "ALL"
              and _key(t[ADS]) < _key(t[GAUSS_288])]
    checks = [
        (f"NAB standard score {overall['score']:.1f} >= {TARGET_SCORE:.0f}",
         overall["score"] >= TARGET_SCORE),
        ("every category at or above the 1-per-288 reference"
         + (f" (behind: {', '.join(behind)})" if behind else ""), not behind),
        (f"false alerts per 2,000 points <= {TARGET_FP_PER_2000:g} on every file "
         f"(worst {worst.fp_per_2000:.2f}, {worst.name})", worst.fp_per_2000 <= TARGET_FP_PER_2000),
        (f"windows hit {overall['hit']}/{overall['windows']} >= {TARGET_HIT:.0%}",
         overall["hit"] >= TARGET_HIT * overall["windows"]),
    ]
    print("\ntargets (issue #8, default options, the real UDF):")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    return all(ok for _, ok in checks)


def _key(total: dict[str, float]) -> float:
    return total["raw"] if total["score"] is None else total["score"]


def plot_worst(ads: list[FileScore], alerts: dict[str, list[int]],
               windows: dict[str, list[tuple[int, int]]], out_dir: Path, count: int = 5) -> None:
    """One PNG per file where ads_model scores worst: series, labelled windows, alerts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    worst = sorted(ads, key=lambda s: s.raw)[:count]
    for s in worst:
        ts, values = load_series(NAB_DIR / s.name)
        x = np.asarray(ts, dtype="datetime64[ns]")
        fig, ax = plt.subplots(figsize=(12, 3.5))
        ax.plot(x, values, lw=0.6, color="tab:blue", label="value")
        for k, (a, b) in enumerate(windows[s.name]):
            ax.axvspan(np.datetime64(a, "ns"), np.datetime64(b, "ns"), color="orange",
                       alpha=0.3, label="labelled window" if k == 0 else None)
        ax.axvline(x[probation_length(len(ts))], color="grey", ls="--", label="probation end")
        for k, t in enumerate(alerts[s.name]):
            ax.axvline(np.datetime64(t, "ns"), color="red", lw=1,
                       label="ads_model alert" if k == 0 else None)
        norm = "-" if s.normalised is None else f"{s.normalised:.1f}"
        ax.set_title(f"{s.name}: {s.hit}/{s.windows} windows, {s.false_alerts} false alerts, "
                     f"NAB {norm} (raw {s.raw:+.2f})", fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{Path(s.name).stem}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        print(f"  saved {path.relative_to(ROOT)}")


def run(nab_dir: Path = NAB_DIR, names: Sequence[str] | None = None
        ) -> tuple[dict[str, list[FileScore]], dict[str, list[int]]]:
    """Every detector on every file (or `names`), with a progress line per file; returns the
    scores and ads_model's alert timestamps per file."""
    windows = load_windows(nab_dir)
    names = sorted(names or windows)
    results: dict[str, list[FileScore]] = {label: [] for label in DETECTORS}
    ads_alerts: dict[str, list[int]] = {}
    start = time.monotonic()
    for k, name in enumerate(names, start=1):
        ts, values = load_series(nab_dir / name)
        for label, detector in DETECTORS.items():
            alert_ts = detector(ts, values)
            if label == ADS:
                ads_alerts[name] = alert_ts
            results[label].append(score_file(name, ts, alert_ts, windows[name]))
        s = results[ADS][-1]
        print(f"[{k:>2}/{len(names)} {time.monotonic() - start:5.0f}s] {name:40} "
              f"ads_model {s.hit}/{s.windows} hit, {s.false_alerts} false", flush=True)
    return results, ads_alerts


def main(argv: list[str] | None = None) -> int:
    """Score, print the tables and the targets, plot the worst files; 1 if a target missed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the PNGs go")
    args = ap.parse_args(argv)
    results, ads_alerts = run()
    categories = json.loads((NAB_DIR / "categories.json").read_text())
    print_files(results)
    by_cat = print_categories(results, categories)
    ok = check_targets(results, by_cat)
    print(f"\nworst five files for ads_model (plots in {args.out_dir}):")
    plot_worst(results[ADS], ads_alerts, load_windows(NAB_DIR), args.out_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
