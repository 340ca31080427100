"""Evaluation protocols: which (context, label) instances a recommender is scored on. eval/README.md documents them."""

from dataclasses import dataclass

from gencrs.data import Dataset, Example, build_examples
from gencrs.format import render_mentions

PROTOCOLS = ("unicrs", "recommender", "gcrs")
LABEL_KINDS = ("new", "repeated")  # a label the context has not mentioned / has already mentioned


@dataclass
class Context:
    key: str  # "dialogue_id:turn_index"
    messages: list[dict]  # earlier turns as chat messages, items rendered as titles
    items: list[str]  # items mentioned in the earlier turns, in order
    exclude: list[str]  # items the ranking must not contain (scored as absent)


def context_text(context: Context, turns: int | None = 3) -> str:
    """The text a context is read from (the rec teacher, the context encoder): its last `turns` messages (all when
    None), role-prefixed."""
    messages = context.messages if turns is None else context.messages[-turns:]
    return " ".join(f"{m['role']}: {m['content']}" for m in messages)


@dataclass
class Instance:
    context: Context
    label: str


def unicrs_instances(dataset: Dataset, split: str, roles: tuple[str, ...] = ("user", "assistant")) -> list[Instance]:
    """Every turn of either role that mentions items and has a non-empty context; one instance per distinct item the
    turn mentions, including items already mentioned earlier; nothing is excluded from the ranking. `roles=
    ("assistant",)` is the gcrs protocol."""
    instances = []
    for dialogue in dataset.splits[split]:
        messages, seen = [], []
        for index, turn in enumerate(dialogue.turns):
            if index > 0 and turn.items and turn.role in roles:
                context = Context(f"{dialogue.id}:{index}", list(messages), list(seen), [])
                instances.extend(Instance(context, item) for item in dict.fromkeys(turn.items))
            messages.append({"role": turn.role, "content": render_mentions(turn.text, dataset.title)})
            seen.extend(i for i in turn.items if i not in seen)
    return instances


def recommender_context(example: Example) -> Context:
    """A turn's context as the recommender protocol ranks for it: items mentioned earlier are excluded (they can never
    be targets)."""
    return Context(example.key, example.context, example.context_items, list(example.context_items))


def recommender_instances(dataset: Dataset, split: str) -> list[Instance]:
    """Assistant turns that recommend (have targets: items not mentioned earlier); one instance per target, ranked
    from its recommender_context."""
    instances = []
    for ex in build_examples(dataset, split):
        if ex.targets:
            instances.extend(Instance(recommender_context(ex), item) for item in ex.targets)
    return instances


def label_kind(instance: Instance) -> str:
    """'repeated' when the context already mentions the label (only the unicrs protocol has such labels), else 'new'."""
    return "repeated" if instance.label in instance.context.items else "new"


def build_instances(dataset: Dataset, split: str, protocol: str) -> list[Instance]:
    if split not in dataset.splits:
        raise ValueError(f"{dataset.name} has no split '{split}' (it has {', '.join(dataset.splits)})")
    if protocol == "unicrs":
        return unicrs_instances(dataset, split)
    if protocol == "recommender":
        return recommender_instances(dataset, split)
    if protocol == "gcrs":  # the Generative CRS paper's reading: recommender turns, repeated items kept (eval/README.md)
        return unicrs_instances(dataset, split, roles=("assistant",))
    raise ValueError(f"unknown protocol '{protocol}' (choose from {', '.join(PROTOCOLS)})")


def contexts_of(instances: list[Instance]) -> list[Context]:
    """Distinct contexts in order: a recommender ranks each context once, however many labels it has."""
    return list({i.context.key: i.context for i in instances}.values())


def select_instances(dataset: Dataset, split: str, protocol: str, limit: int | None = None) -> list[Instance]:
    """The instances of the first `limit` contexts (all of them when None): what `eval run limit=N` ranks."""
    instances = build_instances(dataset, split, protocol)
    keys = {c.key for c in contexts_of(instances)[:limit]}
    return [i for i in instances if i.context.key in keys]
