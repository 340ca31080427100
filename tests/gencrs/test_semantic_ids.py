import random
from itertools import combinations

import numpy as np
import pytest

from gencrs.data.schema import Dataset, Dialogue, Item, Turn
from gencrs.errors import GencrsError
from gencrs.format import mention
from gencrs.semantic_ids import SemanticIdConfig, build_semantic_ids, collaborative_vectors


def grouped_dataset(groups=8, per_group=8, dialogues=300, unmentioned=4) -> tuple[Dataset, list[list[str]]]:
    """Items whose titles say nothing of their group, and train dialogues that each mention 3 items of one group."""
    rng = random.Random(0)
    ids = [f"m{k}" for k in range(groups * per_group + unmentioned)]
    rng.shuffle(ids)
    catalog = {i: Item(i, f"Film number {i[1:]}", 1960 + int(i[1:]) % 50) for i in ids}
    group_of = [ids[g * per_group:(g + 1) * per_group] for g in range(groups)]
    train = []
    for d in range(dialogues):
        items = rng.sample(group_of[rng.randrange(groups)], 3)
        turns = [Turn("user", "I liked " + mention(items[0]), [items[0]]),
                 Turn("assistant", "Try " + " or ".join(mention(i) for i in items[1:]), items[1:])]
        train.append(Dialogue(f"d{d}", turns))
    return Dataset("grouped", catalog, {"train": train}), group_of


def same_first_code_share(codes, group_of) -> float:
    pairs = [(a, b) for group in group_of for a, b in combinations(group, 2)]
    return sum(codes[a][0] == codes[b][0] for a, b in pairs) / len(pairs)


@pytest.mark.parametrize("weight, low, high", [(0.0, 0.0, 0.4), (2.0, 0.8, 1.0)])
def test_collaborative_weight_groups_co_mentioned_items_under_one_first_code(tmp_path, embedding_cache, weight, low,
                                                                              high):
    dataset, group_of = grouped_dataset()
    cfg = SemanticIdConfig(out=str(tmp_path / "sid"), levels=3, codes_per_level=8, cache_dir=str(embedding_cache),
                           collaborative_weight=weight, collaborative_dim=8)
    codes = build_semantic_ids(cfg, dataset).codebook.item_codes
    assert low <= same_first_code_share(codes, group_of) <= high
    assert len(set(codes.values())) == len(dataset.catalog)


def test_collaborative_vectors_are_unit_rows_and_zero_for_items_never_co_mentioned():
    dataset, group_of = grouped_dataset()
    vectors = collaborative_vectors(dataset, dim=8)
    mentioned = {i for group in group_of for i in group}
    norms = dict(zip(dataset.catalog, np.linalg.norm(vectors, axis=1)))
    assert all(abs(norms[i] - 1) < 1e-5 for i in mentioned)
    assert all(norms[i] == 0 for i in dataset.catalog if i not in mentioned)
    with pytest.raises(GencrsError, match="collaborative_dim=100"):
        collaborative_vectors(dataset, dim=100)
