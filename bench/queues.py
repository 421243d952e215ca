"""Wait-estimate benchmark: `.venv/bin/python -m bench.queues`.

Simulates named call-centre days (bench/queue_sim.py), replays each event log through
queue_estimator exactly as `python -m queue_estimator.replay` does, and scores every
predictor on the callers who were answered: RMSE, MAE, RASE (mean squared error over the
squared mean wait) and the coverage of p10..p90. The default predictor's settings were
tuned on the TUNE seeds; the table reports the held-out REPORT seeds. Prints Markdown and
saves JSON in bench/results/queues-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from bench.queue_sim import SCENARIOS, simulate
from queue_estimator.events import Event
from queue_estimator.predictors import DEFAULT, PREDICTORS
from queue_estimator.replay import predict_arrivals

RESULTS = Path(__file__).resolve().parent / "results"
TUNE_SEEDS = (1, 2, 3)
REPORT_SEEDS = (101, 102, 103, 104)
NAMES = tuple(PREDICTORS)
PUBLISHED = tuple(n for n in NAMES if n != DEFAULT)
TARGET_GAIN = 0.05  # geometric-mean RASE at least 5 % below the best published predictor


def run_one(job: tuple[str, int]) -> dict:
    """Simulate one day and collect (actual, predictions) for every answered caller."""
    name, seed = job
    sim = simulate(SCENARIOS[name], seed)
    events = (Event(*row) for row in sim.rows)
    pairs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in NAMES}
    actual: list[float] = []
    for call_id, preds in predict_arrivals(events, NAMES):
        wait = sim.true_wait.get(call_id)
        if wait is None:
            continue  # abandoned: no true wait to score against
        actual.append(wait)
        for n, p in preds.items():
            pairs[n].append((p.predicted_wait_s, p.p10, p.p90))
    return {"scenario": name, "seed": seed, "actual": actual, "pairs": pairs}


def score(actual: list[float], pairs: list[tuple[float, float, float]]) -> dict:
    n = len(actual)
    errors = [p[0] - a for a, p in zip(actual, pairs, strict=True)]
    mse = sum(e * e for e in errors) / n
    mean = sum(actual) / n
    covered = sum(1 for a, (_, lo, hi) in zip(actual, pairs, strict=True) if lo <= a <= hi)
    return {"rmse": math.sqrt(mse), "mae": sum(abs(e) for e in errors) / n,
            "rase": mse / (mean * mean), "coverage": covered / n}


def evaluate(seeds: tuple[int, ...], scenarios: list[str], workers: int) -> dict:
    jobs = [(s, seed) for s in scenarios for seed in seeds]
    with Pool(workers) as pool:
        runs = pool.map(run_one, jobs)
    table: dict[str, dict] = {}
    for name in scenarios:
        mine = [r for r in runs if r["scenario"] == name]
        actual = [a for r in mine for a in r["actual"]]
        table[name] = {
            "answered": len(actual), "mean_wait_s": sum(actual) / len(actual),
            "predictors": {p: score(actual, [x for r in mine for x in r["pairs"][p]])
                           for p in NAMES},
        }
    return table


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def per_scenario(table: dict) -> dict:
    """Each scenario's target: the default's RASE below the best published predictor's."""
    checks = {}
    for name, row in table.items():
        best = min(PUBLISHED, key=lambda p: row["predictors"][p]["rase"])
        mine, theirs = row["predictors"][DEFAULT]["rase"], row["predictors"][best]["rase"]
        checks[name] = {"best_published": best, "rase": mine, "best_rase": theirs,
                        "gain": 1.0 - mine / theirs, "met": mine < theirs}
    return checks


def summarise(table: dict) -> dict:
    rase = {p: [row["predictors"][p]["rase"] for row in table.values()] for p in NAMES}
    geo = {p: geomean(v) for p, v in rase.items()}
    best = min(PUBLISHED, key=lambda p: geo[p])
    checks = per_scenario(table)
    wins = sum(1 for c in checks.values() if c["met"])
    coverage = [row["predictors"][DEFAULT]["coverage"] for row in table.values()]
    return {"geomean_rase": geo, "best_published": best,
            "gain_vs_best": 1.0 - geo[DEFAULT] / geo[best],
            "scenarios_won": wins, "scenarios": len(table), "per_scenario": checks,
            "mean_coverage": sum(coverage) / len(coverage)}


def markdown(table: dict, summary: dict, seeds: tuple[int, ...], label: str) -> str:
    lines = [f"### Wait predictors on simulated queues ({label} seeds {list(seeds)}; "
             f"the default `{DEFAULT}` was tuned on seeds {list(TUNE_SEEDS)})", "",
             "RASE = MSE / (mean wait)^2, lower is better; cov = share of answered callers "
             "inside p10..p90 (target 80 %).", "",
             "| scenario | answered | mean wait s | predictor | RMSE s | MAE s | RASE | cov |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for name, row in table.items():
        best = min(PUBLISHED, key=lambda p: row["predictors"][p]["rase"])
        for i, p in enumerate(NAMES):
            m = row["predictors"][p]
            tag = f"**{p}**" if p == DEFAULT else (f"{p} (best published)" if p == best else p)
            head = (f"| {name} | {row['answered']} | {row['mean_wait_s']:.0f} " if i == 0
                    else "| | | ")
            lines.append(f"{head}| {tag} | {m['rmse']:.1f} | {m['mae']:.1f} | "
                         f"{m['rase']:.3f} | {m['coverage']:.0%} |")
    lines += ["", f"| scenario | `{DEFAULT}` RASE | best published | its RASE | gain | "
              "target met |", "| --- | ---: | --- | ---: | ---: | --- |"]
    lines += [f"| {name} | {c['rase']:.4f} | {c['best_published']} | {c['best_rase']:.4f} | "
              f"{c['gain']:+.1%} | {'yes' if c['met'] else '**NO**'} |"
              for name, c in summary["per_scenario"].items()]
    geo = summary["geomean_rase"]
    lines += ["", "| predictor | geometric-mean RASE |", "| --- | ---: |"]
    lines += [f"| {p} | {geo[p]:.3f} |" for p in sorted(NAMES, key=lambda p: geo[p])]
    ok = (summary["scenarios_won"] == summary["scenarios"]
          and summary["gain_vs_best"] >= TARGET_GAIN)
    lines += ["", f"`{DEFAULT}` beats the best published predictor in "
              f"{summary['scenarios_won']}/{summary['scenarios']} scenarios; geometric-mean "
              f"RASE {summary['gain_vs_best']:.1%} below `{summary['best_published']}` "
              f"(target >= {TARGET_GAIN:.0%}); mean coverage "
              f"{summary['mean_coverage']:.0%}. Target {'met' if ok else 'NOT met'}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queues", description=__doc__)
    parser.add_argument("--seeds", choices=("report", "tune"), default="report",
                        help="report: held-out seeds (default); tune: the tuning seeds")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="only these scenarios (repeatable)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    seeds = REPORT_SEEDS if args.seeds == "report" else TUNE_SEEDS
    scenarios = args.scenario or list(SCENARIOS)
    started = time.perf_counter()
    table = evaluate(seeds, scenarios, args.workers)
    summary = summarise(table)
    elapsed = time.perf_counter() - started
    print(markdown(table, summary, seeds, args.seeds))
    print(f"\n({len(scenarios)} scenarios x {len(seeds)} seeds in {elapsed:.0f} s)")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"queues-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps({
            "seeds": list(seeds), "seed_set": args.seeds, "tune_seeds": list(TUNE_SEEDS),
            "scenarios": {n: {"what": SCENARIOS[n].what, **table[n]} for n in table},
            "summary": summary, "elapsed_s": elapsed}, indent=2))
        print(f"saved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
