"""A short markdown report with one plot (Recall@k for k = 1..K)."""

from pathlib import Path

from gencrs.io import atomic_write_text


def write_report(out: Path, result: dict, curve: list[float]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, len(curve) + 1), curve, marker=".")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.set_title(f"{result['model']} on {result['dataset']} {result['split']} ({result['protocol']})", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out / ".recall_at_k.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out / "recall_at_k.png")
    atomic_write_text(out / "report.md", format_report(result))


def format_report(result: dict) -> str:
    rows = [f"| {m}@{k} | {result[f'{m}@{k}']:.4f} |" for m in ("recall", "ndcg", "mrr") for k in (1, 10, 50) if f"{m}@{k}" in result]
    lines = [
        f"# {result['model']} — {result['dataset']} {result['split']}, protocol `{result['protocol']}`", "",
        f"{result['instances']} instances over {result['contexts']} contexts ({result['seconds']} s). Protocol: eval/README.md.", "",
        "| metric | value |", "|---|---|", *rows, "", "![Recall@k](recall_at_k.png)", "",
        f"First-ranked items: {result['distinct_first_ranked']} distinct, the most frequent first in "
        f"{result['most_frequent_first_ranked_share']:.1%} of contexts; one the context already mentions in "
        f"{result['first_ranked_in_context']:.1%}.", "",
    ]
    if "success_rate" in result:
        lines += [f"User-centric (first-ranked items against the seeker's answers, over {result['user_centric_dialogues']} "
                  f"dialogues): Success Rate {result['success_rate']:.4f}, Reward per Dialogue Length "
                  f"{result['reward_per_dialogue_length']:.4f}.", ""]
    lines += ["## By label (new: not mentioned in the context; repeated: already mentioned)", "",
              "| labels | instances | recall@1 | recall@10 | recall@50 |", "|---|---|---|---|---|"]
    lines += [f"| {kind} | {m['instances']} | {m['recall@1']:.4f} | {m['recall@10']:.4f} | {m['recall@50']:.4f} |"
              for kind, m in result["by_label"].items() if m["instances"]]
    lines += [""]
    if "generation" in result:
        lines += ["## Generated turns", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in result["generation"].items()]
    return "\n".join(lines) + "\n"


def format_example_turns(dataset, examples, generations: dict[str, dict], n: int = 3, context_messages: int = 3) -> str:
    """The model at work: the first `n` turns of `examples` (in split order) whose gold turn recommends and that were
    generated, each with the end of its context, the model's turn (intent, recommended items, response) and the gold
    items. The rule does not look at whether the model got the turn right."""
    shown = [e for e in examples if e.targets and e.key in generations][:n]
    blocks = []
    for example in shown:
        row = generations[example.key]
        lines = [f"--- {example.key}"]
        lines += [f"  {m['role']:>9}: {m['content']}" for m in example.context[-context_messages:]]
        lines.append(f"  {'model':>9}: [{row['intent'] or '?'}] {row['response']}")
        chosen = [i for i in row["target_items"] if i]
        lines.append(f"  {'targets':>9}: " + ("; ".join(f"{dataset.title(i)} ({i})" for i in chosen) or "none"))
        lines.append(f"  {'gold':>9}: " + "; ".join(f"{dataset.title(i)} ({i})" for i in example.targets))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
