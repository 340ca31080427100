"""Offline batch evaluation (eval/README.md), in the project's one command-line style (key=value, --config, --help):

    python -m eval run model=DIR|baseline:popularity dataset=redial split=test protocol=unicrs [generate=true ...]
    python -m eval compare run_a=RUN_A run_b=RUN_B [k=1] [labels=all|new|repeated]   (exact McNemar on Recall@k hits)
    python -m eval compare run_a=RUN_A run_b=RUN_B turns=true [k=1]   (on generated turns: a target among the first k named)
    python -m eval seeds runs=[RUN_SEED0,RUN_SEED1,RUN_SEED2]   (mean and standard deviation of every metric over seeds)
    python -m eval table --config recipes/configs/table_redial.yaml   (train what is missing, evaluate, tabulate)
    python -m eval codes rec_teacher=DIR semantic_ids=[DIR_A,DIR_B] dataset=inspired split=valid   (what each code level says)
    python -m eval prefixes runs=[RUN_A,RUN_B] semantic_ids=DIR [k=50]   (at which code level a top k loses the target)
"""

import sys
from dataclasses import dataclass, field

from eval.codes import CodesConfig, code_information
from eval.compare import compare, compare_turns
from eval.prefixes import PrefixesConfig, prefix_report
from eval.run import EvalConfig, evaluate
from eval.seeds import summarize_seeds
from eval.table import TableConfig, build_table
from gencrs.cli import run_commands
from gencrs.errors import GencrsError


@dataclass
class CompareConfig:
    run_a: str = "???"  # an `eval run` output directory
    run_b: str = "???"  # another, over the same dataset, split, protocol and limit
    k: int = 1
    labels: str | None = None  # all (default) | new | repeated: only labels the context has not / has already mentioned
    turns: bool = False  # compare generated turns (runs made with generate=true): a target among the first k named


def compare_runs(cfg: CompareConfig) -> dict:
    if cfg.turns:
        if cfg.labels:
            raise GencrsError("labels= splits ranking instances; it does not apply to turns=true")
        return compare_turns(cfg.run_a, cfg.run_b, cfg.k)
    return compare(cfg.run_a, cfg.run_b, cfg.k, cfg.labels or "all")


@dataclass
class SeedsConfig:
    runs: list[str] = field(default_factory=list)  # `eval run` output directories of one configuration, one per seed


COMMANDS = {
    "run": (EvalConfig, evaluate, "rank (and with generate=true generate) on a split; write metrics, predictions, report"),
    "compare": (CompareConfig, compare_runs, "paired comparison of two runs' Recall@k or turn hits (exact McNemar test)"),
    "seeds": (SeedsConfig, lambda cfg: summarize_seeds(cfg.runs), "mean and standard deviation of runs over seeds"),
    "table": (TableConfig, build_table, "a results table: its rows' runs trained when missing, evaluated, tabulated"),
    "codes": (CodesConfig, code_information, "per code level, the rec teacher's cross-entropy of the targets' codes against the trie prior"),
    "prefixes": (PrefixesConfig, prefix_report, "per code level, how often a run's top k reaches the target's code prefix"),
}


def main(argv=None) -> int:
    return run_commands("python -m eval", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
