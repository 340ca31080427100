from gencrs.data import build_examples
from gencrs.data.schema import Dataset, Dialogue, Item, Turn
from gencrs.format import ITEM_END, ITEM_START, mention


def make_dataset():
    catalog = {i: Item(id=i, title=t, year=y) for i, t, y in [("1", "Alpha", 1999), ("2", "Beta", 2001), ("3", "Gamma", None)]}
    turns = [
        Turn("user", f"I liked {mention('1')}", ["1"]),
        Turn("assistant", "What else do you like?", []),
        Turn("user", "Comedies", []),
        Turn("assistant", f"{mention('1')} is great; try {mention('2')} and {mention('3')}", ["1", "2", "3"]),
        Turn("user", f"Is {mention('2')} long?", ["2"]),
        Turn("assistant", f"{mention('2')} is two hours.", ["2"]),
        Turn("assistant", "Enjoy!", []),
    ]
    return Dataset("toy", catalog, {"train": [Dialogue("d", turns)]})


def test_one_example_per_assistant_turn_with_targets_and_intents():
    examples = build_examples(make_dataset(), "train")
    assert [ex.turn_index for ex in examples] == [1, 3, 5, 6]
    assert [ex.intent for ex in examples] == ["elicit", "recommend", "discuss", "chat"]
    assert examples[1].targets == ["2", "3"]  # "1" was mentioned earlier by the user: not a target
    assert examples[2].targets == []


def test_context_renders_titles_and_response_marks_spans():
    ex = build_examples(make_dataset(), "train")[1]
    assert ex.context[0] == {"role": "user", "content": "I liked Alpha (1999)"}
    assert ex.response == f"{ITEM_START}Alpha (1999){ITEM_END} is great; try {ITEM_START}Beta (2001){ITEM_END} and {ITEM_START}Gamma{ITEM_END}"
    assert ex.context_items == ["1"]
