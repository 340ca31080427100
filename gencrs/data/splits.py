"""Split names, the validation split carved from train where a source has none (ReDial, own data without valid), and
the folds of train that cross-fitted teachers leave out."""

import hashlib
import random
from dataclasses import replace

from gencrs.data.schema import Dataset, Dialogue
from gencrs.errors import GencrsError

SPLITS = ("train", "valid", "test")
VALID_FRACTION, VALID_SEED = 0.1, 0


def carve_valid(train: list[Dialogue]) -> tuple[list[Dialogue], list[Dialogue]]:
    """10% of train dialogues, chosen with a fixed seed (docs/data.md): sort by id, shuffle the indices, take the first."""
    order = sorted(range(len(train)), key=lambda i: train[i].id)
    random.Random(VALID_SEED).shuffle(order)
    valid_idx = set(order[: round(len(train) * VALID_FRACTION)])
    return ([d for i, d in enumerate(train) if i not in valid_idx], [d for i, d in enumerate(train) if i in valid_idx])


def carved_note(valid: list[Dialogue]) -> str:
    return f"valid = {len(valid)} dialogues carved from train (fraction {VALID_FRACTION}, seed {VALID_SEED})"


def fold_of(dialogue_id: str, folds: int) -> int:
    """The cross-fitting fold of a dialogue, 0 .. folds - 1: a stable hash of its id, the same in every process."""
    return int(hashlib.sha256(dialogue_id.encode()).hexdigest(), 16) % folds


def without_fold(dataset: Dataset, fold: int, folds: int) -> Dataset:
    """`dataset` with the train dialogues (approximate ones included) of one fold left out: what a cross-fitted teacher
    learns from, so that it reads that fold's contexts as it reads unseen ones (docs/teachers.md, cross-fitted teachers)."""
    if folds < 2 or not 0 <= fold < folds:
        raise GencrsError(f"holdout_fold must be in 0 .. folds - 1 with folds >= 2, not fold {fold} of {folds}")
    keep = [d for d in dataset.splits.get("train", []) if fold_of(d.id, folds) != fold]
    return replace(dataset, splits={**dataset.splits, "train": keep},
                   approximate_train=[d for d in dataset.approximate_train if fold_of(d.id, folds) != fold],
                   notes=[*dataset.notes, f"train without fold {fold} of {folds}: {len(keep)} dialogues"])
