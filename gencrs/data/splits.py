"""Split names, and the validation split carved from train where a source has none (ReDial, own data without valid)."""

import random

from gencrs.data.schema import Dialogue

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
