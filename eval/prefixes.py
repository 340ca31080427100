"""Where in the semantic-ID code a run's top k loses the target: at the first level, or among the items that share it.

    python -m eval prefixes runs=[runs/eval/A,runs/eval/B] semantic_ids=runs/semantic_ids_inspired [k=50]

Every run is an `eval run` output over the same dataset, split, protocol and limit (any recommender: a generative
model, the rec teacher, a baseline), read against one semantic-ID table. For each instance, the longest prefix of the
target's code sequence that some item of the run's top k shares. `reached` has one entry per level l = 1 .. L: the
share of instances whose target's first l codes are among the top k's (the last entry is Recall@k). `within_prefix`
has one entry per level l = 1 .. L - 1: reached at l + 1 over reached at l, i.e. of the instances whose first l codes
the top k reaches, the share where it also reaches the next one. `first_codes` is the mean number of distinct first
codes in a top k and `distinct_items` the number of different items over all contexts' top k. Printed as JSON; nothing
is written.
"""

from dataclasses import dataclass, field
from pathlib import Path

from eval.compare import SAME, check_ranked, check_same, read_run
from gencrs.data import load_dataset
from gencrs.data.protocols import select_instances
from gencrs.errors import GencrsError
from gencrs.metrics import dedupe
from tokenizer_ext.codebook import CodeBook


@dataclass
class PrefixesConfig:
    runs: list[str] = field(default_factory=list)  # `eval run` output directories over the same instances
    semantic_ids: str = "???"  # the semantic-ID directory whose codes are read (its codes.json)
    k: int = 50


def shared_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    while n < len(a) and a[n] == b[n]:
        n += 1
    return n


def codes_of(codebook: CodeBook, item: str, source: Path) -> tuple[int, ...]:
    if item not in codebook.item_codes:
        raise GencrsError(f"{source}: ranks '{item}', which the semantic-ID table has no codes for (another catalog?)")
    return tuple(codebook.item_codes[item])


def prefix_profile(rows: dict[str, dict], instances, codebook: CodeBook, k: int, source: Path) -> dict:
    check_ranked(rows, instances, source)
    levels = codebook.levels
    reached = [0] * (levels + 1)  # reached[l]: instances whose target's first l codes the top k holds
    first_codes, items = [], set()
    for instance in instances:
        top = dedupe(rows[instance.context.key]["ranking"])[:k]
        top_codes = [codes_of(codebook, item, source) for item in top]
        gold = codes_of(codebook, instance.label, source)
        depth = max((shared_prefix(gold, codes) for codes in top_codes), default=0)
        for level in range(depth + 1):
            reached[level] += 1
        first_codes.append(len({codes[0] for codes in top_codes}))
        items.update(top)
    n = max(len(instances), 1)
    return {
        "reached": [round(reached[level] / n, 4) for level in range(1, levels + 1)],
        "within_prefix": [round(reached[level + 1] / reached[level], 4) if reached[level] else None
                          for level in range(1, levels)],
        "hits": reached[levels],
        "first_codes": round(sum(first_codes) / n, 2),
        "distinct_items": len(items),
    }


def prefix_report(cfg: PrefixesConfig) -> dict:
    if not cfg.runs:
        raise GencrsError("runs: give at least one `eval run` output directory, e.g. runs=[runs/eval/A]")
    if cfg.k < 1:
        raise GencrsError(f"k must be at least 1, not {cfg.k}")
    codebook = CodeBook.load(cfg.semantic_ids)
    loaded = [(run, *read_run(Path(run))) for run in cfg.runs]
    first_run, first_config, _ = loaded[0]
    for run, config, _ in loaded[1:]:
        check_same(first_run, first_config, run, config, SAME, "ranked different instances")
    dataset = load_dataset(first_config["dataset"], data_dir=first_config.get("data_dir"))
    instances = select_instances(dataset, first_config["split"], first_config["protocol"], first_config.get("limit"))
    return {"k": cfg.k, "instances": len(instances), "semantic_ids": cfg.semantic_ids,  # the command line prints it
            "runs": {run: prefix_profile(rows, instances, codebook, cfg.k, Path(run)) for run, _, rows in loaded}}
