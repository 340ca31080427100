from collections import Counter

from gencrs.data import build_examples, load_dataset
from gencrs.data.schema import Dataset
from gencrs.format import mentioned_ids


def test_deterministic_for_a_seed():
    a, b, c = load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=4)
    assert a == b
    assert a.splits["train"][:20] != c.splits["train"][:20]


def test_mentions_only_catalog_items(synthetic):
    for dialogues in synthetic.splits.values():
        for d in dialogues:
            for t in d.turns:
                assert set(mentioned_ids(t.text)) == set(t.items)
                assert set(t.items) <= synthetic.catalog.keys()


def test_has_all_intents(synthetic):
    intents = Counter(ex.intent for ex in build_examples(synthetic, "train"))
    assert all(intents[i] > 100 for i in ("recommend", "discuss", "elicit", "chat"))


def recall_at(rankings, examples, k):
    hits = [any(t in ranking[:k] for t in ex.targets) for ranking, ex in zip(rankings, examples)]
    return sum(hits) / len(hits)


def test_learnable_reading_preferences_beats_popularity_by_far(synthetic: Dataset):
    """A non-learned rule that reads the stated genre/people beats train popularity several times over."""
    train_counts = Counter(ex_t for ex in build_examples(synthetic, "train") for ex_t in ex.targets)
    popular = sorted(synthetic.catalog, key=lambda i: -train_counts[i])
    test = [ex for ex in build_examples(synthetic, "test") if ex.intent == "recommend"]

    def preference_rank(ex):
        context = " ".join(m["content"] for m in ex.context if m["role"] == "user")
        liked = [synthetic.catalog[i] for i in ex.context_items]
        def score(item):
            s = sum(g in context for g in item.genres) + 2 * sum(p in context for p in item.directors + item.actors)
            s += sum(2 * (item.directors == l.directors) + (bool(set(item.genres) & set(l.genres))) for l in liked)
            return (s, train_counts[item.id])
        return [i for i in sorted(synthetic.catalog, key=lambda i: score(synthetic.catalog[i]), reverse=True) if i not in ex.context_items]

    popularity = recall_at([[i for i in popular if i not in ex.context_items] for ex in test], test, 10)
    reader = recall_at([preference_rank(ex) for ex in test], test, 10)
    print(f"recall@10 preference reader {reader:.3f} vs popularity {popularity:.3f}")
    assert reader > 3 * popularity and reader > 0.3, (reader, popularity)


def test_titles_tell_the_main_genre(synthetic):
    """A title's noun comes from its item's main genre (what lets the first semantic-ID level follow the genre the
    user asks for); titles stay unique."""
    from gencrs.data.synthetic import GENRE_NOUNS
    nouns = {genre: {n.lower() for n in words} for genre, words in GENRE_NOUNS.items()}
    for item in synthetic.catalog.values():
        assert any(item.title.lower().endswith(" " + n) for n in nouns[item.genres[0]]), (item.title, item.genres)
    assert len({item.title for item in synthetic.catalog.values()}) == len(synthetic.catalog)
