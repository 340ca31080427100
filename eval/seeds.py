"""Mean and sample standard deviation of one configuration's evaluation runs over seeds: the numbers a table row gives.

    python -m eval seeds runs=[runs/eval/A_seed0,runs/eval/A_seed1,runs/eval/A_seed2]

Every run must have evaluated the same dataset, split, protocol and limit (as `compare` requires). Each metric of
`metrics.json` that is a number in every run is summarized: the top-level ones (Recall/NDCG/MRR@k, SR, RDL, ...) and,
for runs made with generate=true, the turn metrics under `generation`.
"""

import json
import statistics
from pathlib import Path

from eval.compare import SAME, check_same
from gencrs.errors import GencrsError

ROW = ("recall@1", "recall@10", "recall@50", "success_rate", "reward_per_dialogue_length")


def read_metrics(run: str) -> tuple[dict, dict]:
    config_path, metrics_path = Path(run) / "config.json", Path(run) / "metrics.json"
    for path in (config_path, metrics_path):
        if not path.exists():
            raise GencrsError(f"{path}: not found (is {run} a finished `eval run` output directory?)")
    return json.loads(config_path.read_text()), json.loads(metrics_path.read_text())


def numbers(fields: dict) -> dict[str, float]:
    return {k: v for k, v in fields.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def numeric(metrics: dict) -> dict[str, float]:
    values = numbers(metrics)
    for count in ("seconds", "contexts", "instances", "user_centric_dialogues"):  # sizes and times, not metrics
        values.pop(count, None)
    return values | {f"generation.{k}": v for k, v in numbers(metrics.get("generation", {})).items()}


def summarize_seeds(runs: list[str]) -> dict:
    if len(runs) < 2:
        raise GencrsError(f"runs: {len(runs)} given; a mean and standard deviation over seeds needs at least 2")
    read = [read_metrics(run) for run in runs]
    for run, (config, _) in zip(runs[1:], read[1:]):
        check_same(runs[0], read[0][0], run, config, SAME, "evaluated different instances")
    per_run = [numeric(metrics) for _, metrics in read]
    names = [name for name in per_run[0] if all(name in values for values in per_run[1:])]
    summary = {name: {"mean": statistics.fmean(v[name] for v in per_run),
                      "std": statistics.stdev(v[name] for v in per_run)} for name in names}
    row = " | ".join(f"{summary[m]['mean']:.4f} ± {summary[m]['std']:.4f}" for m in ROW if m in summary)
    config = read[0][0]
    return {"runs": runs, "dataset": config["dataset"], "split": config["split"], "protocol": config["protocol"],
            "row": f"| {row} |", "row_metrics": [m for m in ROW if m in summary], "metrics": summary}
