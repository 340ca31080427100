"""A results table from its rows: every run trained when it is missing (by its row's recipe command), evaluated once on
the split under each protocol, summarized over seeds (eval.seeds), and the paired tests between rows (eval.compare).

    python -m eval table --config recipes/configs/table_redial.yaml

A row is a baseline (`model: baseline:NAME`) or trained runs: `run` is seed 0's run directory, seed N's is `run`_seedN
(`seeded: true`: one per seed of the table), each made by the row's `train` command with `seed=N out=RUN` added and
evaluated from RUN/`artifact`. A run whose artifact exists is not trained again and an evaluation whose metrics.json
exists is not run again, so a killed table resumes (the recipes and `eval run` resume within a run too). Writes `out`
(markdown: one table per protocol, the turn metrics of the `generate` rows, the paired tests) and `out` .json.
"""

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.compare import compare
from eval.run import EvalConfig, evaluate
from eval.seeds import ROW, numbers, summarize_seeds
from gencrs.errors import GencrsError
from gencrs.io import atomic_write_json, atomic_write_text

RANKING = dict(zip(ROW, ("R@1", "R@10", "R@50", "SR", "RDL")))  # eval seeds' row cells, with their column names
TURNS = {"ReR@1": "ReR@1", "PrR@1": "PrR@1", "F1@1": "F1@1", "recommendation_turn_ratio": "rec. turns",
         "mismatch_rate": "mismatch", "bleu2": "BLEU-2", "distinct2": "Distinct-2", "perplexity": "PPL"}


@dataclass
class Row:
    name: str = "???"  # the row's label in the table (and in `compare`)
    model: str | None = None  # baseline:NAME; none for a row of trained runs
    run: str | None = None  # seed 0's run directory
    artifact: str = "model"  # what `eval run` loads from a run: model (students, dialogue teachers) | teacher (rec teacher)
    train: list[str] = field(default_factory=list)  # the recipe command, e.g. [recipes/sft_conkd.py, --config, FILE, gamma=0]
    seeded: bool = False  # one run per seed of the table (else seed 0's only)
    generate: bool = False  # also generate every assistant turn, under the first protocol (the turn metrics)
    train_data: str = ""  # which train data the row used, as the table says it


@dataclass
class Comparison:
    a: str = "???"  # row names; a seeded row is paired seed by seed (with a single run, that run)
    b: str = "???"
    k: int = 1


@dataclass
class TableConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    split: str = "test"
    protocols: list[str] = field(default_factory=lambda: ["recommender", "unicrs", "gcrs"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    rows: list[Row] = field(default_factory=list)
    compare: list[Comparison] = field(default_factory=list)
    batch_size: int = 16
    eval_root: str = "runs/eval"  # where each evaluation is written (and found when the table runs again)
    train: bool = True  # train the missing runs; false: tabulate what exists (a row's `runs` then says `k of n`)
    out: str = "runs/tables/synthetic_test.md"


def row_runs(row: Row, seeds: list[int]) -> list[tuple[int, str]]:
    """(seed, run directory) of each of the row's runs; a baseline's 'run' is its model name."""
    if row.model:
        return [(0, row.model)]
    if not row.run:
        raise GencrsError(f"row {row.name!r}: give model (a baseline) or run (trained runs)")
    return [(s, row.run if s == 0 else f"{row.run}_seed{s}") for s in (seeds if row.seeded else seeds[:1])]


def ensure_trained(row: Row, seed: int, run: str) -> str:
    """The run's artifact, trained first by the row's command when it is missing."""
    artifact = Path(run) / row.artifact
    if not artifact.exists():  # build_table has checked that a missing run's row has a train command
        command = [sys.executable, *row.train, f"seed={seed}", f"out={run}"]
        print("training:", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
        if not artifact.exists():
            raise GencrsError(f"row {row.name!r}: {' '.join(command[1:])} finished without writing {artifact}")
    return str(artifact)


def eval_dir(cfg: TableConfig, run: str, protocol: str) -> Path:
    name = run.removeprefix("baseline:") + f"_{Path(cfg.dataset).name}" if run.startswith("baseline:") else Path(run).name
    return Path(cfg.eval_root) / f"{name}_{cfg.split}_{protocol}"


def evaluate_once(cfg: TableConfig, model: str, out: Path, protocol: str, generate: bool) -> dict:
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    print(f"evaluating {model} on {cfg.dataset} {cfg.split}, {protocol}", flush=True)
    return evaluate(EvalConfig(model=model, dataset=cfg.dataset, data_dir=cfg.data_dir, split=cfg.split,
                               protocol=protocol, out=str(out), batch_size=cfg.batch_size, generate=generate))


def cell(values: dict, name: str) -> str:
    if name not in values:
        return "-"
    mean, std = values[name]
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def summarize(dirs: list[Path], generation: bool = False) -> dict[str, tuple[float, float | None]]:
    """metric -> (mean, sample std over seeds; None for one run); empty before any run is evaluated."""
    if not dirs:
        return {}
    if len(dirs) > 1:
        metrics = summarize_seeds([str(d) for d in dirs])["metrics"]
        return {k.removeprefix("generation."): (v["mean"], v["std"]) for k, v in metrics.items()
                if k.startswith("generation.") == generation}
    metrics = json.loads((dirs[0] / "metrics.json").read_text())
    return {k: (v, None) for k, v in numbers(metrics.get("generation", {}) if generation else metrics).items()}


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                     ["| " + " | ".join(line) + " |" for line in lines])


def write_table(cfg: TableConfig, runs: dict[str, list[tuple[int, str]]], done: dict[tuple[str, str], dict[int, Path]]) -> str:
    """The table of what has been evaluated so far: `runs` says `k of n` where a row's runs are not all in yet."""
    def evaluated(name: str, protocol: str) -> list[Path]:
        return [d for _, d in sorted(done.get((name, protocol), {}).items())]

    def count(name: str, protocol: str) -> str:
        k, n = len(done.get((name, protocol), {})), len(runs[name])
        return str(k) if k == n else f"{k} of {n}"

    sections, result = [], {"config": asdict(cfg), "protocols": {}, "turns": {}, "compare": []}
    for protocol in cfg.protocols:
        summaries = {row.name: summarize(evaluated(row.name, protocol)) for row in cfg.rows}
        columns = [m for m in RANKING if any(m in s for s in summaries.values())]
        lines = [[row.name, count(row.name, protocol), row.train_data] +
                 [cell(summaries[row.name], m) for m in columns] for row in cfg.rows]
        sections.append(f"### {cfg.dataset} {cfg.split}, `{protocol}` protocol\n\n" +
                        markdown_table(["row", "runs", "train data"] + [RANKING[m] for m in columns], lines))
        result["protocols"][protocol] = {name: {k: list(v) for k, v in s.items()} for name, s in summaries.items()}
    generating, first = [row for row in cfg.rows if row.generate], cfg.protocols[0]
    if generating:
        turns = {row.name: summarize(evaluated(row.name, first), generation=True) for row in generating}
        sections.append(f"### {cfg.dataset} {cfg.split}, generated turns\n\n" + markdown_table(
            ["row", "runs"] + list(TURNS.values()),
            [[row.name, count(row.name, first)] + [cell(turns[row.name], m) for m in TURNS] for row in generating]))
        result["turns"] = {name: {k: list(v) for k, v in s.items()} for name, s in turns.items()}
    lines = []
    for comparison in cfg.compare:
        runs_a, runs_b = evaluated(comparison.a, first), evaluated(comparison.b, first)
        for n in range(max(len(runs_a), len(runs_b)) if runs_a and runs_b else 0):
            a, b = runs_a[min(n, len(runs_a) - 1)], runs_b[min(n, len(runs_b) - 1)]
            test = compare(str(a), str(b), comparison.k)
            result["compare"].append(test)
            lines.append([comparison.a, comparison.b, a.name, str(comparison.k), str(test["hits_a"]),
                          str(test["hits_b"]), str(test["only_a"]), str(test["only_b"]), f"{test['mcnemar_p']:.4g}"])
    if lines:
        sections.append(f"### Paired tests (`{first}`, exact McNemar on Recall@k hits)\n\n" + markdown_table(
            ["a", "b", "run a", "k", "hits a", "hits b", "only a", "only b", "p"], lines))
    text = "\n\n".join(sections) + "\n"
    atomic_write_text(cfg.out, text)
    atomic_write_json(Path(cfg.out).with_suffix(".json"), result)
    return text


def build_table(cfg: TableConfig) -> dict:
    names = [row.name for row in cfg.rows]
    if len(set(names)) != len(names):
        raise GencrsError(f"rows: two rows are named alike ({names})")
    for comparison in cfg.compare:
        for name in (comparison.a, comparison.b):
            if name not in names:
                raise GencrsError(f"compare: no row named {name!r} (rows: {', '.join(names)})")
    if cfg.dataset == "synthetic" and any(row.seeded for row in cfg.rows) and len(cfg.seeds) > 1:
        raise GencrsError("seeded rows on the synthetic dataset: a run's seed also picks the synthetic world, so its "
                          "seeds would train on other worlds than the one evaluated; use one seed or a real dataset")
    runs = {row.name: row_runs(row, cfg.seeds) for row in cfg.rows}  # checked before anything trains
    done: dict[tuple[str, str], dict[int, Path]] = {}

    def evaluate_run(row: Row, seed: int, run: str, model: str) -> None:
        for n, protocol in enumerate(cfg.protocols):
            out = eval_dir(cfg, run, protocol)
            evaluate_once(cfg, model, out, protocol, row.generate and n == 0)
            done.setdefault((row.name, protocol), {})[seed] = out

    ready, missing = [], []
    for row in cfg.rows:
        for seed, run in runs[row.name]:
            exists = row.model or (Path(run) / row.artifact).exists()
            (ready if exists else missing).append((row, seed, run))
            if not exists and not row.train:
                raise GencrsError(f"row {row.name!r}: {Path(run) / row.artifact} does not exist and the row has no "
                                  "train command")
    # What exists is evaluated and tabulated first, so that a long table shows its finished runs while the missing ones
    # train, one at a time, each evaluated and tabulated as soon as it is written.
    for row, seed, run in ready:
        evaluate_run(row, seed, run, run if row.model else ensure_trained(row, seed, run))
    text = write_table(cfg, runs, done)
    for row, seed, run in missing if cfg.train else []:
        evaluate_run(row, seed, run, ensure_trained(row, seed, run))
        text = write_table(cfg, runs, done)
    print(text)
    return {"table": cfg.out, "rows": len(cfg.rows), "evaluations": sum(len(d) for d in done.values()),
            "runs_missing": 0 if cfg.train else len(missing)}
