"""`make nab-tradeoff`: what each way of trading recall for quiet costs, on the whole corpus.

Runs mlkit.ads.SeriesDetector in-process (the same code as the UDF, which alerts identically:
tests/test_ads_model.py) with the default options and with the option sets that
docs/ads_model-design.md compares, on the 46 NAB series, and prints per setting the NAB
standard score, the windows hit, the false alerts, the files over 1 false alert per 2,000
points and the most alerts on 8,000 points of Gaussian noise (ten seeds). Saves
out/nab/tradeoff.png: windows hit against false alerts. `bench/nab_score.py --option
NAME=VALUE` scores any one setting through the real UDF.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mlkit.ads import SeriesDetector
from mlkit.nab import NAB_DIR, detector_scores, totals
from mlkit.nabdata import load_corpus

OUT = Path(__file__).resolve().parents[1] / "out" / "nab" / "tradeoff.png"
SETTINGS: dict[str, dict[str, float]] = {
    "defaults": {},
    "min_sigma=3": {"min_sigma": 3.0},
    "min_sigma=5": {"min_sigma": 5.0},
    "history=8192": {"history": 8192},
    "confirm=2": {"confirm": 2},
    "confirm=3": {"confirm": 3},
    "confirm=3 history=8192": {"confirm": 3, "history": 8192},
    "confirm=4 margin=0.1": {"confirm": 4, "margin": 0.1},
    "confirm=4 margin=0.2": {"confirm": 4, "margin": 0.2},
    "min_sigma=8 history=8192 min_gap=288 margin=0.2":
        {"min_sigma": 8.0, "history": 8192, "min_gap": 288, "margin": 0.2},
}
NOISE_POINTS, NOISE_SEEDS = 8000, 10


def measure(options: dict[str, float], series: dict, windows: dict) -> dict[str, float]:
    """Corpus totals of one setting, and its worst count of alerts on pure noise."""
    scores = detector_scores(options, series, windows)
    total = totals(scores)
    stamps = list(range(NOISE_POINTS))
    noise = max(len(SeriesDetector(**options).alerts(stamps, rng.normal(size=NOISE_POINTS)))
                for rng in map(np.random.default_rng, range(NOISE_SEEDS)))
    return {**total, "files_over": sum(s.fp_per_2000 > 1.0 for s in scores), "noise": noise}


def plot(rows: dict[str, dict[str, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    points = ax.scatter([r["false_alerts"] for r in rows.values()],
                        [r["hit"] for r in rows.values()],
                        c=[r["files_over"] for r in rows.values()], cmap="viridis_r", s=40,
                        edgecolors=["red" if label == "defaults" else "none" for label in rows])
    fig.colorbar(points, ax=ax, label="files over 1 false alert per 2,000 points")
    for k, (label, r) in enumerate(rows.items()):  # alternate sides: neighbours stay legible
        ax.annotate(label, (r["false_alerts"], r["hit"]), fontsize=7,
                    xytext=(5, 4 if k % 2 else -10), textcoords="offset points")
    windows = next(iter(rows.values()))["windows"]
    ax.axhline(0.75 * windows, color="grey", ls="--", lw=0.8, label="75% of the windows")
    ax.set_xlabel("false alerts on the 46 series")
    ax.set_ylabel(f"labelled windows hit (of {windows:.0f})")
    ax.set_title("ads_model on the NAB corpus: recall against quiet, by option setting")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="where the PNG goes")
    args = ap.parse_args(argv)
    series, windows = load_corpus(NAB_DIR)
    print(f"{'setting':50} | score | windows | false alerts | files over 1/2000 | noise max")
    rows = {}
    for label, options in SETTINGS.items():
        r = rows[label] = measure(options, series, windows)
        print(f"{label:50} | {r['score']:5.1f} | {r['hit']:>3}/{r['windows']:<3} | "
              f"{r['false_alerts']:>12} | {r['files_over']:>17} | {r['noise']:>9}", flush=True)
    plot(rows, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
