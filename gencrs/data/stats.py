from collections import Counter

from gencrs.data.examples import build_examples
from gencrs.data.schema import Dataset
from gencrs.format import INTENTS


def dataset_stats(dataset: Dataset) -> dict:
    catalog = dataset.catalog
    stats = {
        "dataset": dataset.name,
        "items": len(catalog),
        "items_with_metadata": sum(item.has_metadata for item in catalog.values()),
        "splits": {},
        "notes": dataset.notes,
    }
    for split, dialogues in dataset.splits.items():
        examples = build_examples(dataset, split)
        intents = Counter(ex.intent for ex in examples)
        targets = Counter(min(len(ex.targets), 4) for ex in examples)
        stats["splits"][split] = {
            "dialogues": len(dialogues),
            "turns": sum(len(d.turns) for d in dialogues),
            "examples": len(examples),
            "items_mentioned": len({i for d in dialogues for t in d.turns for i in t.items}),
            "intent": {intent: intents[intent] for intent in INTENTS},
            "targets_per_turn": {("4+" if k == 4 else str(k)): targets[k] for k in range(5)},
        }
    return stats


def format_stats(stats: dict) -> str:
    n_items = stats["items"]
    share = stats["items_with_metadata"] / n_items if n_items else 0.0
    lines = [f"dataset {stats['dataset']}: {n_items} items, {stats['items_with_metadata']} with metadata ({share:.1%})"]
    header = f"{'split':<6} {'dialogues':>9} {'turns':>7} {'examples':>8} {'items':>6}  " + " ".join(f"{i:>9}" for i in INTENTS) + "  targets/turn 0|1|2|3|4+"
    lines.append(header)
    for split, s in stats["splits"].items():
        total = max(s["examples"], 1)
        intents = " ".join(f"{s['intent'][i] / total:>9.1%}" for i in INTENTS)
        hist = "|".join(str(v) for v in s["targets_per_turn"].values())
        lines.append(f"{split:<6} {s['dialogues']:>9} {s['turns']:>7} {s['examples']:>8} {s['items_mentioned']:>6}  {intents}  {hist}")
    lines.extend(f"note: {n}" for n in stats["notes"])
    return "\n".join(lines)
