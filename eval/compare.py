"""Paired comparison of two evaluation runs on the same instances: Recall@k hits of each, the discordant counts (hit by
one run only) and the exact two-sided McNemar test on them (a binomial test of the discordant split against 1/2).

    python -m eval compare runs/eval/A runs/eval/B [--k 1] [--labels all|new|repeated]

Both runs must have ranked the same dataset, split, protocol and limit; the instances are rebuilt from the data as
`eval run` built them.
"""

import json
from pathlib import Path

from scipy.stats import binomtest

from gencrs.data import load_dataset
from gencrs.errors import GencrsError
from eval.metrics import dedupe
from eval.protocols import LABEL_KINDS, label_kind, select_instances

SAME = ("dataset", "split", "protocol", "limit")


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts; 1.0 when there are none."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)


def read_run(directory: Path) -> tuple[dict, dict[str, list[str]]]:
    config_path, predictions_path = directory / "config.json", directory / "predictions.jsonl"
    for path in (config_path, predictions_path):
        if not path.exists():
            raise GencrsError(f"{path}: not found (is {directory} an `eval run` output directory?)")
    rankings = {}
    for line_number, line in enumerate(predictions_path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            rankings[row["key"]] = row["ranking"]
        except (json.JSONDecodeError, KeyError) as e:
            raise GencrsError(f"{predictions_path}:{line_number}: not a prediction row ({e})") from e
    return json.loads(config_path.read_text()), rankings


def hits_at_k(rankings: dict[str, list[str]], instances, k: int, source: Path) -> list[bool]:
    missing = list(dict.fromkeys(i.context.key for i in instances if i.context.key not in rankings))
    if missing:
        raise GencrsError(f"{source}: {len(missing)} contexts have no prediction (first: {missing[0]}); "
                          "finish the run (`eval run` resumes) before comparing")
    return [i.label in dedupe(rankings[i.context.key])[:k] for i in instances]


def compare(run_a: str, run_b: str, k: int = 1, labels: str = "all") -> dict:
    if labels not in ("all", *LABEL_KINDS):
        raise GencrsError(f"labels: '{labels}' is not one of all, {', '.join(LABEL_KINDS)}")
    (config_a, rankings_a), (config_b, rankings_b) = read_run(Path(run_a)), read_run(Path(run_b))
    differ = [f"{field} ({config_a.get(field)!r} vs {config_b.get(field)!r})" for field in SAME
              if config_a.get(field) != config_b.get(field)]
    if differ:
        raise GencrsError(f"{run_a} and {run_b} ranked different instances: {', '.join(differ)}")
    dataset = load_dataset(config_a["dataset"], data_dir=config_a.get("data_dir"))
    instances = select_instances(dataset, config_a["split"], config_a["protocol"], config_a.get("limit"))
    instances = [i for i in instances if labels in ("all", label_kind(i))]
    hits_a = hits_at_k(rankings_a, instances, k, Path(run_a))
    hits_b = hits_at_k(rankings_b, instances, k, Path(run_b))
    only_a = sum(a and not b for a, b in zip(hits_a, hits_b))
    only_b = sum(b and not a for a, b in zip(hits_a, hits_b))
    return {"a": run_a, "b": run_b, "k": k, "labels": labels, "instances": len(instances),
            f"recall@{k}_a": sum(hits_a) / max(len(instances), 1), f"recall@{k}_b": sum(hits_b) / max(len(instances), 1),
            "hits_a": sum(hits_a), "hits_b": sum(hits_b), "only_a": only_a, "only_b": only_b,
            "mcnemar_p": mcnemar_exact(only_a, only_b)}
