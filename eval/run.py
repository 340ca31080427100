"""The evaluation harness: rank (and optionally generate) for every context of a protocol, resumable, then metrics,
a JSON file, per-context predictions and a short markdown report with a Recall@k plot."""

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from eval.recommenders import load_recommender
from gencrs import metrics as M
from gencrs.data import build_examples, load_dataset
from gencrs.data.protocols import (
    LABEL_KINDS,
    Context,
    contexts_of,
    label_kind,
    select_instances,
)
from gencrs.format import ITEM_SPAN_RE, RESPONSE_START, assistant_turn, render_mentions
from gencrs.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    model: str = "baseline:popularity"  # a model directory or baseline:NAME
    dataset: str = "redial"  # a built-in name or a dataset directory (docs/data.md)
    split: str = "test"
    protocol: str = "unicrs"  # unicrs, recommender or gcrs (eval/README.md)
    data_dir: str | None = None
    out: str | None = None  # default runs/eval/<model>_<dataset>_<split>_<protocol>
    k: int = 50
    batch_size: int = 8
    generate: bool = False  # models only: also generate every assistant turn and score the responses
    max_new_tokens: int = 64
    limit: int | None = None  # evaluate only the first N contexts (smoke runs)
    backend: str = "hf"  # generative models: hf (transformers) or vllm (vllm.LLM on an exported model directory)


def default_out(cfg: EvalConfig) -> Path:
    name = cfg.model.replace("baseline:", "") if cfg.model.startswith("baseline:") else Path(cfg.model).name
    return Path("runs/eval") / f"{name}_{Path(cfg.dataset).name}_{cfg.split}_{cfg.protocol}"  # a dataset may be a path


class JsonlResume:
    """Append-only JSON lines keyed by 'key'; on open, a torn last line (a killed run) is dropped."""

    def __init__(self, path: Path):
        self.path, self.rows = path, {}
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            good = []
            for line in lines:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.rows[row["key"]] = row
                good.append(line)
            if len(good) != len(lines):
                atomic_write_text(path, "".join(g + "\n" for g in good))

    def append(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows[row["key"]] = row
            f.flush()
            os.fsync(f.fileno())


def context_length(context: Context) -> int:
    return sum(len(m["content"]) for m in context.messages)


def run_ranking(recommender, contexts: list[Context], store: JsonlResume, k: int, batch_size: int) -> None:
    # Longest first: left-padded batches of similar length pad less (ReDial test, batch 16: 1.7x fewer prompt
    # tokens); rows are keyed, so the order does not matter.
    todo = sorted((c for c in contexts if c.key not in store.rows), key=context_length, reverse=True)
    if len(todo) < len(contexts):
        log.info("resuming: %d of %d contexts already ranked", len(contexts) - len(todo), len(contexts))
    if todo and hasattr(recommender, "prepare"):  # the rec teacher embeds all context texts in one pass, not per batch
        recommender.prepare(todo)
    with tqdm(total=len(contexts), initial=len(contexts) - len(todo), desc=f"rank ({recommender.name})", unit="ctx") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            store.append([{"key": c.key, "ranking": r} for c, r in zip(batch, recommender.rank(batch, k))])
            bar.update(len(batch))


def run_generation(recommender, dataset, split: str, store: JsonlResume, batch_size: int, limit: int | None) -> dict:
    examples = build_examples(dataset, split)[:limit]
    contexts = [Context(e.key, e.context, e.context_items, []) for e in examples]
    todo = sorted(((c, e) for c, e in zip(contexts, examples) if c.key not in store.rows),
                  key=lambda pair: context_length(pair[0]), reverse=True)
    with tqdm(total=len(contexts), initial=len(contexts) - len(todo), desc="generate turns", unit="turn") as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            turns = recommender.generate_turns([c for c, _ in batch])
            gold = [assistant_turn(e.intent, [recommender.codebook.text(t) for t in e.targets], e.response) for _, e in batch]
            nll = [recommender.response_nll([c], [g]) for (c, _), g in zip(batch, gold)]
            store.append([{"key": c.key, **t, "nll": n[0], "nll_tokens": n[1]} for (c, _), t, n in zip(batch, turns, nll)])
            bar.update(len(batch))
    return generation_metrics(dataset, examples, [store.rows[c.key] for c in contexts])


def response_items(dataset, rows: list[dict]) -> list[list[str]]:
    """Per generated turn, the catalog items its response names, in order (titles mapped to ids, unknown titles dropped;
    a title shared by several items maps to the first in catalog order)."""
    by_title = {}
    for item_id in dataset.catalog:
        by_title.setdefault(dataset.title(item_id), item_id)
    return [[by_title[t] for t in r["response_titles"] if t in by_title] for r in rows]


def generation_metrics(dataset, examples, rows: list[dict]) -> dict:
    from eval.generative import perplexity
    named = response_items(dataset, rows)
    targets = [[i for i in r["target_items"] if i] for r in rows]
    references = [render_mentions(e.response.replace("<|item|>", "").replace("<|/item|>", ""), dataset.title) for e in examples]
    hypotheses = [r["response"] for r in rows]
    with_targets = [n for n, e in enumerate(examples) if e.targets]
    out = {
        "turns": len(rows),
        "invalid_target_sequences": sum(i is None for r in rows for i in r["target_items"]),
        "target_sequences": sum(len(r["target_items"]) for r in rows),
        **M.in_response_metrics([named[n] for n in with_targets], [examples[n].targets for n in with_targets], 1),
        "recommendation_turn_ratio": M.recommendation_turn_ratio(named),
        "gold_recommendation_turn_ratio": sum(bool(e.targets) for e in examples) / max(len(examples), 1),
        "mismatch_rate": M.mismatch_rate(targets, named),
        **M.unmarked_title_rates([ITEM_SPAN_RE.sub(" ", r["text"].partition(RESPONSE_START)[2]) for r in rows],
                                 [dataset.title(i) for i in dataset.catalog]),
        "bleu2": M.bleu(hypotheses, references, 2), "bleu3": M.bleu(hypotheses, references, 3),
        **M.rouge(hypotheses, references),
        **{f"distinct{n}": M.distinct(hypotheses, n) for n in (2, 3, 4)},
        "perplexity": perplexity(sum(r["nll"] for r in rows), sum(r["nll_tokens"] for r in rows)),
    }
    return out


def seeker_reward(feedback) -> float:
    """The reward of recommending an item the seeker answered about: liked 1.0, else seen 0.5, else 0."""
    if feedback is None:
        return 0.0
    return 1.0 if feedback.liked else 0.5 if feedback.seen else 0.0


def user_centric(dataset, split: str, contexts, store) -> dict:
    """SR and RDL over the dialogues whose seeker answered about items (ReDial's initiatorQuestions) and that have a
    ranked context; {} for datasets without such answers."""
    dialogues = {d.id: d for d in dataset.splits[split] if d.feedback}
    rewards: dict[str, list[float]] = {}
    for context in contexts:
        dialogue = dialogues.get(context.key.rpartition(":")[0])
        first = store.rows[context.key]["ranking"][:1]
        if dialogue is not None and first:
            rewards.setdefault(dialogue.id, []).append(seeker_reward(dialogue.feedback.get(first[0])))
    if not rewards:
        return {}
    return M.user_centric_metrics(rewards, {d: len(dialogues[d].turns) for d in rewards})


def evaluate(cfg: EvalConfig) -> dict:
    start = time.monotonic()
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    instances = select_instances(dataset, cfg.split, cfg.protocol, cfg.limit)
    contexts = contexts_of(instances)
    recommender = load_recommender(cfg.model, dataset, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                   backend=cfg.backend)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", asdict(cfg))
    store = JsonlResume(out / "predictions.jsonl")
    run_ranking(recommender, contexts, store, cfg.k, cfg.batch_size)
    rankings = [store.rows[i.context.key]["ranking"] for i in instances]
    labels = [i.label for i in instances]
    result = {"model": cfg.model, "dataset": dataset.name, "split": cfg.split, "protocol": cfg.protocol,
              "contexts": len(contexts), **M.ranking_metrics(rankings, labels)}
    firsts = [store.rows[c.key]["ranking"][:1] for c in contexts]
    first_counts = Counter(f[0] for f in firsts if f)
    result["first_ranked_in_context"] = sum(f[0] in c.items for f, c in zip(firsts, contexts) if f) / max(len(contexts), 1)
    result["distinct_first_ranked"] = len(first_counts)
    result["most_frequent_first_ranked_share"] = max(first_counts.values(), default=0) / max(len(contexts), 1)
    result.update(user_centric(dataset, cfg.split, contexts, store))
    kinds = [label_kind(i) for i in instances]
    result["by_label"] = {kind: M.ranking_metrics([r for r, k in zip(rankings, kinds) if k == kind],
                                                  [l for l, k in zip(labels, kinds) if k == kind]) for kind in LABEL_KINDS}
    if hasattr(recommender, "invalid_beams"):  # counted over the contexts ranked in this process
        result["invalid_ranked_sequences"] = recommender.invalid_beams
    curve = M.recall_curve(rankings, labels, cfg.k)
    if cfg.generate:
        if cfg.model.startswith("baseline:"):
            raise ValueError("generate=true needs a model directory, not a baseline")
        result["generation"] = run_generation(recommender, dataset, cfg.split, JsonlResume(out / "generations.jsonl"),
                                              cfg.batch_size, cfg.limit)
    result["seconds"] = round(time.monotonic() - start, 1)
    atomic_write_json(out / "metrics.json", result)
    from eval.report import write_report
    write_report(out, result, curve)
    return result
