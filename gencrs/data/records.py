"""Training records: one prompt-completion pair per assistant turn, in the output format of gencrs.format."""

from gencrs.data import Dataset, build_examples
from gencrs.data.examples import Example, dialogue_examples
from gencrs.format import ITEM_END, ITEM_START, assistant_turn, prompt_messages
from tokenizer_ext.codebook import CodeBook


def turn_text(example: Example, codebook: CodeBook) -> str:
    return assistant_turn(example.intent, [codebook.text(t) for t in example.targets], example.response)


def context_item_codes(items: list[str], codebook: CodeBook, context_codes: bool) -> list[str]:
    """What a prompt shows of the context's items (gencrs.format.prompt_messages): their code strings for a model that
    reads them (`context_codes`), else nothing."""
    return [codebook.text(i) for i in items] if context_codes else []


def sft_records(dataset: Dataset, split: str, codebook: CodeBook, tokenizer, max_length: int,
                limit: int | None = None, context_codes: bool = False) -> list[dict]:
    """Conversational prompt-completion records. The oldest context messages are dropped until prompt + completion
    fit `max_length` tokens (TRL only truncates the end, which would cut the completion). `limit`: the first N only;
    `context_codes`: each prompt opens with the codes of the items its context mentions."""
    return fitted_records(build_examples(dataset, split), codebook, tokenizer, max_length, limit, context_codes)


def fitted_records(examples: list[Example], codebook: CodeBook, tokenizer, max_length: int,
                   limit: int | None = None, context_codes: bool = False) -> list[dict]:
    """`fitted_record` of each example's gold turn, those whose completion alone is too long skipped (the caller counts
    them); `limit`: the first N records only."""
    records = []
    for ex in examples:
        if limit is not None and len(records) >= limit:
            break
        record = fitted_record(tokenizer, ex, turn_text(ex, codebook), max_length,
                               context_item_codes(ex.context_items, codebook, context_codes))
        if record is not None:
            records.append(record)
    return records


def fitted_record(tokenizer, example: Example, turn: str, max_length: int, item_codes: list[str] = ()) -> dict | None:
    """The record of `example` with the assistant turn `turn`, its oldest context messages dropped until prompt +
    completion fit `max_length` tokens; None when the completion alone does not fit. `item_codes`: the context's
    items as the prompt shows them (`context_item_codes`), kept whatever is dropped."""
    completion = [{"role": "assistant", "content": turn}]
    context = list(example.context)
    while True:
        prompt = prompt_messages(context, item_codes)
        n = len(tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=False))
        if n <= max_length or not context:
            break
        context = context[1:]
    return {"prompt": prompt, "completion": completion, "key": example.key} if n <= max_length else None


def item_examples(dataset: Dataset, per_item: int, seed: int = 0) -> list[Example]:
    """Item-alignment turns (as LC-Rec's): a user request built from one item's metadata (a genre, a director, an actor
    or a writer) -> a recommend turn whose target is that item. They tie each item's codes to what the item is, which
    dialogue turns only show indirectly; `per_item` requests per item, each naming a random subset of its metadata.
    Items without metadata get none. Keys are `item:<id>:<n>`; the teachers read them like dialogue turns."""
    import random

    rng = random.Random(seed)
    examples = []
    for item_id, item in sorted(dataset.catalog.items()):
        facts = [*(f"a {g} movie" for g in item.genres[:2]), *(f"directed by {d}" for d in item.directors[:2]),
                 *(f"with {a}" for a in item.actors[:3]), *(f"written by {w}" for w in item.writers[:2])]
        if not facts:
            continue
        for n in range(per_item):
            chosen = rng.sample(facts, min(len(facts), rng.randint(1, 2)))
            examples.append(Example(
                dialogue_id=f"item:{item_id}", turn_index=n,
                context=[{"role": "user", "content": f"Can you recommend {' '.join(chosen)}?"}], intent="recommend",
                targets=[item_id], response=f"You might enjoy {ITEM_START}{dataset.title(item_id)}{ITEM_END}.",
                context_items=[]))
    return examples


def item_records(dataset: Dataset, codebook: CodeBook, per_item: int, seed: int = 0) -> list[dict]:
    """Prompt-completion records of `item_examples`."""
    return [{"prompt": prompt_messages(ex.context),
             "completion": [{"role": "assistant", "content": turn_text(ex, codebook)}], "key": ex.key}
            for ex in item_examples(dataset, per_item, seed)]


def approximate_examples(dataset: Dataset) -> list[Example]:
    """The recommendation turns (those with a target item) of the dataset's approximate train dialogues
    (`redial_mentions`: the official train dialogues the subset lacks, their turn order and roles rebuilt;
    docs/data.md). Keys are `precessed:<position>:<turn>`."""
    return [ex for d in dataset.approximate_train for ex in dialogue_examples(d, dataset.title) if ex.targets]


def approximate_records(dataset: Dataset, codebook: CodeBook, tokenizer, max_length: int,
                        context_codes: bool = False) -> list[dict]:
    """Records of `approximate_examples`, flagged `codes_only`: their loss counts at the target's code tokens only,
    since their text's order and roles are approximate while their items are the dialogue's own."""
    return [{**record, "codes_only": True}
            for record in fitted_records(approximate_examples(dataset), codebook, tokenizer, max_length,
                                         context_codes=context_codes)]


def examples_by_key(dataset: Dataset, split: str, item_records_per_item: int = 0, seed: int = 0,
                    approximate: bool = False) -> dict[str, Example]:
    """Every Example a run's `split` records come from, by record key: the dialogue turns, and in train the run's
    item-alignment turns and (`approximate`) the approximate dialogues' recommendation turns (what the teachers read
    for each record)."""
    examples = build_examples(dataset, split)
    if item_records_per_item:
        examples += item_examples(dataset, item_records_per_item, seed)
    if approximate:
        examples += approximate_examples(dataset)
    return {e.key: e for e in examples}
