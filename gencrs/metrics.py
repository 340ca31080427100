"""Metrics. Ranking metrics follow the one-label-per-instance convention of CRS codebases (UniCRS's RecEvaluator):
Recall@k = hit, NDCG@k = 1/log2(rank+2), MRR@k = 1/(rank+1) for a label at 0-based rank < k, else 0, averaged over
instances. A ranked list is de-duplicated (first occurrence kept) before scoring; a list shorter than k simply has
fewer chances. Response metrics use sacrebleu and rouge-score."""

import math
from collections import Counter

KS = (1, 10, 50)


def dedupe(ranking: list[str]) -> list[str]:
    return list(dict.fromkeys(ranking))


def rank_by_scores(scores, item_ids: list[str]) -> list[str]:
    """Items by descending score; ties keep catalog order (a stable sort), so a ranking is deterministic."""
    order = sorted(range(len(item_ids)), key=lambda i: -float(scores[i]))
    return [item_ids[i] for i in order]


def ranking_metrics(rankings: list[list[str]], labels: list[str], ks=KS) -> dict[str, float]:
    if len(rankings) != len(labels):
        raise ValueError(f"{len(rankings)} rankings for {len(labels)} labels")
    totals = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg", "mrr") for k in ks}
    for ranking, label in zip(rankings, labels):
        ranking = dedupe(ranking)
        position = ranking.index(label) if label in ranking else None
        for k in ks:
            if position is not None and position < k:
                totals[f"recall@{k}"] += 1
                totals[f"ndcg@{k}"] += 1 / math.log2(position + 2)
                totals[f"mrr@{k}"] += 1 / (position + 1)
    n = max(len(labels), 1)
    return {name: value / n for name, value in totals.items()} | {"instances": len(labels)}


def recall_curve(rankings: list[list[str]], labels: list[str], max_k: int = 50) -> list[float]:
    positions = [dedupe(r).index(l) if l in r else None for r, l in zip(rankings, labels)]
    n = max(len(labels), 1)
    return [sum(p is not None and p < k for p in positions) / n for k in range(1, max_k + 1)]


def in_response_metrics(named: list[list[str]], gold: list[list[str]], k: int) -> dict[str, float]:
    """ConKD-style recommendation quality of the generated response itself, over turns with gold targets:
    ReR@k = |first k named items ∩ gold| / |gold|, PrR@k = the same / |first k named| (0 when none is named),
    F1@k their harmonic mean per turn; all averaged over turns."""
    rer = prr = f1 = 0.0
    for items, targets in zip(named, gold):
        top, targets = dedupe(items)[:k], set(targets)
        hits = len(set(top) & targets)
        r = hits / len(targets) if targets else 0.0
        p = hits / len(top) if top else 0.0
        rer, prr, f1 = rer + r, prr + p, f1 + (2 * r * p / (r + p) if r + p else 0.0)
    n = max(len(gold), 1)
    return {f"ReR@{k}": rer / n, f"PrR@{k}": prr / n, f"F1@{k}": f1 / n}


def user_centric_metrics(rewards: dict[str, list[float]], lengths: dict[str, int]) -> dict[str, float]:
    """Success Rate and Reward per Dialogue Length (Kostric & Balog, SIGIR 2026; eval/README.md). `rewards`: dialogue
    -> the seeker's reward for the first-ranked item of each of its ranked turns (liked 1.0, seen 0.5, else 0);
    `lengths`: dialogue -> its number of turns. SR: share of dialogues with a reward above 0 on some turn; RDL: a
    dialogue's summed rewards over its length, averaged over dialogues."""
    n = max(len(rewards), 1)
    return {"success_rate": sum(any(r > 0 for r in rs) for rs in rewards.values()) / n,
            "reward_per_dialogue_length": sum(sum(rs) / max(lengths[d], 1) for d, rs in rewards.items()) / n,
            "user_centric_dialogues": len(rewards)}


def recommendation_turn_ratio(named: list[list[str]]) -> float:
    """Share of turns whose response names at least one item."""
    return sum(bool(n) for n in named) / max(len(named), 1)


def mismatch_rate(targets: list[list[str]], named: list[list[str]]) -> float:
    """Among turns that name an item in the target span or in the response, the share where the two sets differ."""
    pairs = [(set(t), set(n)) for t, n in zip(targets, named) if t or n]
    return sum(t != n for t, n in pairs) / max(len(pairs), 1)


def unmarked_title_rates(texts: list[str], titles: list[str]) -> dict[str, float]:
    """Share of responses that name a title outside an item span, where no rule applies: `texts` are the responses
    with their item spans removed. `unmarked_catalog_title_rate` counts a catalog title (exact text),
    `unmarked_title_rate` also an invented or cut one in the catalog's "Title (Year)" form (a parenthesized year)."""
    import re
    names = sorted({t for t in titles if t}, key=len, reverse=True)
    catalog = re.compile("|".join(map(re.escape, names))) if names else None
    year = re.compile(r"\((?:1[89]|20)\d\d\b")  # "(1985)", also "(1985" cut before its ")"
    n = max(len(texts), 1)
    in_catalog = [bool(catalog and catalog.search(t)) for t in texts]
    return {"unmarked_catalog_title_rate": sum(in_catalog) / n,
            "unmarked_title_rate": sum(c or bool(year.search(t)) for c, t in zip(in_catalog, texts)) / n}


def bleu(hypotheses: list[str], references: list[str], n: int) -> float:
    """Corpus BLEU-n (sacrebleu, 13a tokenization, uniform weights over 1..n-grams), in [0, 1]."""
    from sacrebleu.metrics import BLEU
    return BLEU(max_ngram_order=n, effective_order=True).corpus_score(hypotheses, [references]).score / 100


def rouge(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Mean F-measure of ROUGE-2 and ROUGE-L (rouge-score, stemming on)."""
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, hyp) for hyp, ref in zip(hypotheses, references)]
    n = max(len(scores), 1)
    return {"rouge2": sum(s["rouge2"].fmeasure for s in scores) / n, "rougeL": sum(s["rougeL"].fmeasure for s in scores) / n}


def distinct(hypotheses: list[str], n: int) -> float:
    """Corpus-level Distinct-n (Li et al., 2016): distinct n-grams / all n-grams, lower-cased whitespace tokens."""
    grams = Counter()
    for text in hypotheses:
        tokens = text.lower().split()
        grams.update(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return len(grams) / max(sum(grams.values()), 1)
