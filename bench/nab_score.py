"""`make nab`: NAB scores of the real ads_model UDF on the corpus, beside two references.

The UDF runs with its DEFAULT options (or those given with ``--option``) over the protocol
(``udfkit.replay``), one process per file, on every file of training_data_sets/nab (46 NAB
series). Two reference detectors run in the same process on the same files: the windowed
Gaussian (|z| > 4 against the last 6,400 points, one alert per run) and the same with at most
one alert per 288 points. Prints per-file and per-category tables and the figures beside
those committed in bench/nab_reference.json, and saves a PNG for the five files where
ads_model scores worst into out/nab/ (git-ignored).

Exit status 0, or 1 on a regression: with the default options, a lower score, fewer windows
hit or more false alerts than the committed figures. A change that improves them passes and
says so, so that the figures can be raised with it. The research record behind the figures is
docs/ads_model-design.md; the scoring rules are mlkit.nab's (shared with the tests).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from localstack import ROOT
from mlkit.nab import (
    NAB_DIR,
    FileScore,
    ads_model_udf,
    probation_length,
    score_file,
    totals,
    windowed_gaussian,
)
from mlkit.nabdata import load_series, load_windows

OUT_DIR = ROOT / "out" / "nab"
REFERENCE = Path(__file__).with_name("nab_reference.json")
SCORE_DECIMALS = 1  # the figures are compared as printed
ADS, GAUSS, GAUSS_288 = "ads_model", "gaussian |z|>4", "gaussian, 1 per 288"

Detector = Callable[[list[int], np.ndarray], list[int]]
Total = dict[str, float | None]  # mlkit.nab.totals


# --------------------------------------------------------------------------- detectors


DETECTORS: dict[str, Detector] = {
    ADS: ads_model_udf,
    GAUSS: windowed_gaussian,
    GAUSS_288: lambda ts, values: windowed_gaussian(ts, values, every=288),
}


# --------------------------------------------------------------------------- reporting


def shown(total: Total) -> str:
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
                     ) -> dict[str, dict[str, Total]]:
    """Per-category totals of each detector; returns them for the target check."""
    by_cat: dict[str, dict[str, Total]] = {}
    print(f"\n{'category':24}" + "".join(f" | {label[:22]:>22}" for label in results))
    for cat, names in [*categories.items(), ("ALL", None)]:
        by_cat[cat] = {label: totals([s for s in scores if names is None or s.name in names])
                       for label, scores in results.items()}
        cells = "".join(f" | {t['hit']:>3}/{t['windows']:<3} {t['false_alerts']:>4} "
                        f"{shown(t):>9}" for t in by_cat[cat].values())
        print(f"{cat:24}{cells}")
    return by_cat


def regressions(overall: Total, reference: dict[str, float]) -> list[str]:
    """What got worse than the committed figures (score, windows hit, false alerts)."""
    score = round(overall["score"] or 0.0, SCORE_DECIMALS)
    worse = []
    if score < reference["score"]:
        worse.append(f"score {score} < {reference['score']}")
    if (overall["hit"] or 0) < reference["hit"]:
        worse.append(f"windows hit {overall['hit']} < {reference['hit']}")
    if (overall["false_alerts"] or 0) > reference["false_alerts"]:
        worse.append(f"false alerts {overall['false_alerts']} > {reference['false_alerts']}")
    return worse


def compare(by_cat: dict[str, dict[str, Total]], options: dict[str, str],
            reference: dict[str, float]) -> bool:
    """Print ads_model's corpus figures beside the committed ones; False on a regression
    (checked with the default options only: other options are meant to differ)."""
    overall = by_cat["ALL"][ADS]
    print(f"\nads_model: score {shown(overall)}, {overall['hit']}/{overall['windows']} windows, "
          f"{overall['false_alerts']} false alerts; committed in {REFERENCE.name}: "
          f"{reference['score']}, {reference['hit']}/{reference['windows']}, "
          f"{reference['false_alerts']}")
    if options:
        print("options given: no comparison with the committed figures")
        return True
    worse = regressions(overall, reference)
    if worse:
        print("REGRESSION: " + "; ".join(worse))
    elif (round(overall["score"] or 0.0, SCORE_DECIMALS), overall["hit"],
          overall["false_alerts"]) != (reference["score"], reference["hit"],
                                       reference["false_alerts"]):
        print(f"better than the committed figures: raise them in {REFERENCE}")
    return not worse


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
        print(f"  saved {path}")


def run(nab_dir: Path = NAB_DIR, names: Sequence[str] | None = None,
        options: dict[str, str] | None = None
        ) -> tuple[dict[str, list[FileScore]], dict[str, list[int]]]:
    """Every detector on every file (or `names`), ads_model with `options`, with a progress
    line per file; returns the scores and ads_model's alert timestamps per file."""
    windows = load_windows(nab_dir)
    names = sorted(names or windows)
    detectors = {**DETECTORS, ADS: functools.partial(ads_model_udf, options=options)}
    results: dict[str, list[FileScore]] = {label: [] for label in detectors}
    ads_alerts: dict[str, list[int]] = {}
    start = time.monotonic()
    for k, name in enumerate(names, start=1):
        ts, values = load_series(nab_dir / name)
        for label, detector in detectors.items():
            alert_ts = detector(ts, values)
            if label == ADS:
                ads_alerts[name] = alert_ts
            results[label].append(score_file(name, ts, alert_ts, windows[name]))
        s = results[ADS][-1]
        print(f"[{k:>2}/{len(names)} {time.monotonic() - start:5.0f}s] {name:40} "
              f"ads_model {s.hit}/{s.windows} hit, {s.false_alerts} false", flush=True)
    return results, ads_alerts


def main(argv: list[str] | None = None) -> int:
    """Score, print the tables and the comparison, plot the worst files; 1 on a regression."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the PNGs go")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    type=_option, help="an ads_model option instead of its default "
                    "(e.g. confirm=3); repeat for several")
    args = ap.parse_args(argv)
    options = dict(args.option)
    results, ads_alerts = run(options=options)
    categories = json.loads((NAB_DIR / "categories.json").read_text())
    print_files(results)
    by_cat = print_categories(results, categories)
    ok = compare(by_cat, options, json.loads(REFERENCE.read_text()))
    print(f"\nworst five files for ads_model (plots in {args.out_dir}):")
    plot_worst(results[ADS], ads_alerts, load_windows(NAB_DIR), args.out_dir)
    return 0 if ok else 1


def _option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


if __name__ == "__main__":
    raise SystemExit(main())
