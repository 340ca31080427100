"""One training example per assistant turn (docs/data.md gives the rules).

Targets: the items the assistant turn mentions that no earlier turn of the dialogue (either role) mentioned.
Intent, by a deterministic rule on the turn:
    recommend  the turn has at least one target item
    discuss    it mentions items, all of them mentioned before
    elicit     it mentions no item and asks a question ('?')
    chat       everything else
The coarse intent (recommend vs chat) is `recommend` for `recommend` and `chat` for the other three.
"""

from dataclasses import dataclass

from gencrs.data.schema import Dataset, Dialogue
from gencrs.format import render_mentions


TWIN_PREFIX = "teacher:"  # the dialogue id of a student's teacher-labelled twin of a turn: this + its source's


def source_dialogue(key: str) -> str:
    """The dialogue a turn's key (`dialogue_id:turn_index`) comes from; for a twin's, its source turn's dialogue."""
    return key.rpartition(":")[0].removeprefix(TWIN_PREFIX)


@dataclass
class Example:
    dialogue_id: str
    turn_index: int
    context: list[dict]  # chat messages [{"role", "content"}], items rendered as titles
    intent: str
    targets: list[str]  # item ids this turn recommends
    response: str  # with item spans marked <|item|>Title<|/item|>
    context_items: list[str]  # items mentioned before this turn, in order

    @property
    def key(self) -> str:
        """Names the turn across records, teacher caches and evaluation outputs."""
        return f"{self.dialogue_id}:{self.turn_index}"


def turn_intent(text: str, items: list[str], targets: list[str]) -> str:
    if targets:
        return "recommend"
    if items:
        return "discuss"
    if "?" in text:
        return "elicit"
    return "chat"


def dialogue_examples(dialogue: Dialogue, title_of) -> list[Example]:
    examples, context, seen = [], [], []
    for index, turn in enumerate(dialogue.turns):
        if turn.role == "assistant":
            targets = [i for i in turn.items if i not in seen]
            examples.append(Example(
                dialogue_id=dialogue.id, turn_index=index, context=list(context),
                intent=turn_intent(turn.text, turn.items, targets), targets=targets,
                response=render_mentions(turn.text, title_of, marked=True), context_items=list(seen),
            ))
        context.append({"role": turn.role, "content": render_mentions(turn.text, title_of)})
        seen.extend(i for i in turn.items if i not in seen)
    return examples


def build_examples(dataset: Dataset, split: str) -> list[Example]:
    return [ex for d in dataset.splits[split] for ex in dialogue_examples(d, dataset.title)]
