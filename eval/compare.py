"""Paired comparison of two evaluation runs on the same instances: the hits of each, the discordant counts (hit by one
run only) and the exact two-sided McNemar test on them (a binomial test of the discordant split against 1/2).

    python -m eval compare run_a=runs/eval/A run_b=runs/eval/B [k=1] [labels=all|new|repeated]
    python -m eval compare run_a=runs/eval/A run_b=runs/eval/B turns=true [k=1]

Ranking hits: the label is in the first k of the context's ranking; both runs must have ranked the same dataset, split,
protocol and limit, and the instances are rebuilt from the data as `eval run` built them. Turn hits (`turns=true`, runs
made with `generate=true`): over the turns with gold targets, one of the first k items the generated response names is a
target (at k=1, the per-turn PrR@1); both runs must have generated the same dataset, split and limit.
"""

import json
from pathlib import Path

from scipy.stats import binomtest

from eval.run import response_items
from gencrs.data import build_examples, load_dataset
from gencrs.data.protocols import LABEL_KINDS, label_kind, select_instances
from gencrs.errors import GencrsError
from gencrs.metrics import dedupe

SAME = ("dataset", "split", "protocol", "limit")
SAME_TURNS = ("dataset", "split", "limit")  # generation covers every assistant turn, whatever the protocol


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts; 1.0 when there are none."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)


def read_run(directory: Path, rows_file: str = "predictions.jsonl", field: str = "ranking",
             hint: str = "") -> tuple[dict, dict[str, dict]]:
    """A run's config and the rows of one of its keyed JSONL files, each checked to hold `field`."""
    config_path, rows_path = directory / "config.json", directory / rows_file
    for path in (config_path, rows_path):
        if not path.exists():
            raise GencrsError(f"{path}: not found (is {directory} an `eval run` output directory{hint}?)")
    rows = {}
    for line_number, line in enumerate(rows_path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            row[field]  # a row without it is not this file's kind of row
            rows[row["key"]] = row
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise GencrsError(f"{rows_path}:{line_number}: not a row with 'key' and '{field}' ({e})") from e
    return json.loads(config_path.read_text()), rows


def check_same(run_a: str, config_a: dict, run_b: str, config_b: dict, fields: tuple[str, ...], what: str) -> None:
    differ = [f"{field} ({config_a.get(field)!r} vs {config_b.get(field)!r})" for field in fields
              if config_a.get(field) != config_b.get(field)]
    if differ:
        raise GencrsError(f"{run_a} and {run_b} {what}: {', '.join(differ)}")


def missing_error(source: Path, missing: list[str], what: str) -> GencrsError:
    return GencrsError(f"{source}: {len(missing)} {what} (first: {missing[0]}); finish the run (`eval run` resumes) "
                       "before comparing")


def paired(hits_a: list[bool], hits_b: list[bool], name: str) -> dict:
    n = max(len(hits_a), 1)
    only_a = sum(a and not b for a, b in zip(hits_a, hits_b))
    only_b = sum(b and not a for a, b in zip(hits_a, hits_b))
    return {f"{name}_a": sum(hits_a) / n, f"{name}_b": sum(hits_b) / n, "hits_a": sum(hits_a), "hits_b": sum(hits_b),
            "only_a": only_a, "only_b": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b)}


def check_ranked(rows: dict[str, dict], instances, source: Path) -> None:
    missing = list(dict.fromkeys(i.context.key for i in instances if i.context.key not in rows))
    if missing:
        raise missing_error(source, missing, "contexts have no prediction")


def hits_at_k(rows: dict[str, dict], instances, k: int, source: Path) -> list[bool]:
    check_ranked(rows, instances, source)
    return [i.label in dedupe(rows[i.context.key]["ranking"])[:k] for i in instances]


def compare(run_a: str, run_b: str, k: int = 1, labels: str = "all") -> dict:
    if labels not in ("all", *LABEL_KINDS):
        raise GencrsError(f"labels: '{labels}' is not one of all, {', '.join(LABEL_KINDS)}")
    (config_a, rows_a), (config_b, rows_b) = read_run(Path(run_a)), read_run(Path(run_b))
    check_same(run_a, config_a, run_b, config_b, SAME, "ranked different instances")
    dataset = load_dataset(config_a["dataset"], data_dir=config_a.get("data_dir"))
    instances = select_instances(dataset, config_a["split"], config_a["protocol"], config_a.get("limit"))
    instances = [i for i in instances if labels in ("all", label_kind(i))]
    hits_a = hits_at_k(rows_a, instances, k, Path(run_a))
    hits_b = hits_at_k(rows_b, instances, k, Path(run_b))
    return {"a": run_a, "b": run_b, "k": k, "labels": labels, "instances": len(instances),
            **paired(hits_a, hits_b, f"recall@{k}")}


def turn_hits(rows: dict[str, dict], dataset, examples, k: int, source: Path) -> list[bool]:
    missing = [e.key for e in examples if e.key not in rows]
    if missing:
        raise missing_error(source, missing, "turns have no generation")
    named = response_items(dataset, [rows[e.key] for e in examples])
    return [bool(set(dedupe(items)[:k]) & set(e.targets)) for items, e in zip(named, examples)]


def compare_turns(run_a: str, run_b: str, k: int = 1) -> dict:
    (config_a, rows_a), (config_b, rows_b) = (read_run(Path(run), "generations.jsonl", "response_titles",
                                                       " made with generate=true") for run in (run_a, run_b))
    check_same(run_a, config_a, run_b, config_b, SAME_TURNS, "generated different turns")
    dataset = load_dataset(config_a["dataset"], data_dir=config_a.get("data_dir"))
    examples = [e for e in build_examples(dataset, config_a["split"])[:config_a.get("limit")] if e.targets]
    hits_a = turn_hits(rows_a, dataset, examples, k, Path(run_a))
    hits_b = turn_hits(rows_b, dataset, examples, k, Path(run_b))
    return {"a": run_a, "b": run_b, "k": k, "turns_with_targets": len(examples),
            **paired(hits_a, hits_b, f"first_{k}_named_hit")}
