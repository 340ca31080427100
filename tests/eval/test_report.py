from eval.report import format_example_turns
from gencrs.data import build_examples


def test_example_turns_show_context_model_turn_and_gold_of_the_first_recommend_turns(synthetic):
    examples = build_examples(synthetic, "valid")
    recommend = [e for e in examples if e.targets]
    chosen = "m000" if recommend[0].targets[0] != "m000" else "m001"
    generations = {e.key: {"intent": "recommend", "response": f"Try {synthetic.title(chosen)}.",
                           "target_items": [chosen, None]} for e in examples}
    text = format_example_turns(synthetic, examples, generations, n=2)
    blocks = text.split("--- ")[1:]
    assert [b.splitlines()[0] for b in blocks] == [recommend[0].key, recommend[1].key]  # split order, gold recommends
    first = blocks[0]
    assert recommend[0].context[-1]["content"] in first  # the end of the context
    assert f"model: [recommend] Try {synthetic.title(chosen)}." in first
    assert f"targets: {synthetic.title(chosen)} ({chosen})" in first  # an invalid target sequence (None) is left out
    assert "gold: " + "; ".join(f"{synthetic.title(i)} ({i})" for i in recommend[0].targets) in first
    # turns without a generation are skipped, not invented
    del generations[recommend[0].key]
    assert format_example_turns(synthetic, examples, generations, n=1).startswith(f"--- {recommend[1].key}")
