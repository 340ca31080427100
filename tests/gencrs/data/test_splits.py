from dataclasses import replace

import pytest

from gencrs.data.splits import fold_of, without_fold
from gencrs.errors import GencrsError


def test_fold_of_is_stable_and_spreads_dialogues():
    ids = [f"train:{n}" for n in range(1000)]
    assert [fold_of(i, 4) for i in ids] == [fold_of(i, 4) for i in ids]
    sizes = [sum(fold_of(i, 4) == f for i in ids) for f in range(4)]
    assert all(200 <= s <= 300 for s in sizes), sizes
    assert fold_of("train_data_dbpedia:14", 4) == 0  # a hash of the id, not of the process (no PYTHONHASHSEED)


def test_without_fold_leaves_out_one_fold_of_train_only(synthetic):
    approximate = [replace(d, id=f"approx:{n}") for n, d in enumerate(synthetic.splits["valid"][:40])]
    dataset = replace(synthetic, approximate_train=approximate)
    folds = [without_fold(dataset, f, 3) for f in range(3)]
    train_ids = {d.id for d in dataset.splits["train"]}
    for f, held in enumerate(folds):
        kept = {d.id for d in held.splits["train"]}
        assert kept == {i for i in train_ids if fold_of(i, 3) != f}
        assert {d.id for d in held.approximate_train} == {d.id for d in approximate if fold_of(d.id, 3) != f}
        assert held.splits["valid"] == dataset.splits["valid"] and held.splits["test"] == dataset.splits["test"]
    assert sum(len(held.splits["train"]) for held in folds) == 2 * len(train_ids)  # each dialogue left out once
    assert len(dataset.splits["train"]) == len(train_ids)  # the dataset itself is untouched


@pytest.mark.parametrize("fold,folds", [(3, 3), (-1, 3), (0, 1)])
def test_without_fold_refuses_a_fold_that_does_not_exist(synthetic, fold, folds):
    with pytest.raises(GencrsError, match="holdout_fold"):
        without_fold(synthetic, fold, folds)
