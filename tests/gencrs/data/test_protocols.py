from gencrs.data.protocols import build_instances, contexts_of, label_kind
from gencrs.data.schema import Dataset, Dialogue, Item, Turn
from gencrs.format import mention


def toy():
    catalog = {i: Item(i, i.upper()) for i in "abcd"}
    turns = [
        Turn("user", f"I like {mention('a')}", ["a"]),  # first turn: no context, never an instance
        Turn("assistant", f"Try {mention('b')} or {mention('a')}", ["b", "a"]),
        Turn("user", f"Seen {mention('b')}. And {mention('c')}?", ["b", "c"]),
        Turn("assistant", f"Then {mention('d')}", ["d"]),
    ]
    return Dataset("toy", catalog, {"test": [Dialogue("d1", turns)]})


def test_unicrs_both_roles_every_mentioned_item():
    instances = build_instances(toy(), "test", "unicrs")
    assert [(i.context.key, i.label) for i in instances] == [
        ("d1:1", "b"), ("d1:1", "a"), ("d1:2", "b"), ("d1:2", "c"), ("d1:3", "d")]
    assert all(not i.context.exclude for i in instances)
    assert instances[0].context.messages == [{"role": "user", "content": "I like A"}]


def test_a_label_the_context_already_mentions_is_repeated():
    kinds = [label_kind(i) for i in build_instances(toy(), "test", "unicrs")]
    assert kinds == ["new", "repeated", "repeated", "new", "new"]
    assert {label_kind(i) for i in build_instances(toy(), "test", "recommender")} == {"new"}


def test_recommender_assistant_targets_only_and_excludes_context_items():
    instances = build_instances(toy(), "test", "recommender")
    assert [(i.context.key, i.label) for i in instances] == [("d1:1", "b"), ("d1:3", "d")]
    assert instances[1].context.exclude == ["a", "b", "c"]
    assert len(contexts_of(instances)) == 2


def test_real_redial_instance_counts(redial):
    unicrs = build_instances(redial, "test", "unicrs")
    recommender = build_instances(redial, "test", "recommender")
    assert len(unicrs) > len(recommender) > 0
    assert len(contexts_of(recommender)) == sum(1 for d in redial.splits["test"] for i, t in enumerate(d.turns)
                                                if t.role == "assistant" and set(t.items) - {x for u in d.turns[:i] for x in u.items})


def test_gcrs_assistant_turns_every_mentioned_item_nothing_excluded():
    """The Generative CRS reading: recommender turns that mention items, one instance per item, repeats kept."""
    instances = build_instances(toy(), "test", "gcrs")
    assert [(i.context.key, i.label) for i in instances] == [("d1:1", "b"), ("d1:1", "a"), ("d1:3", "d")]
    assert all(not i.context.exclude for i in instances)
    assert [label_kind(i) for i in instances] == ["new", "repeated", "new"]
