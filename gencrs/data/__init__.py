"""Data layer: every source loads into one schema (gencrs.data.schema); examples are built from it."""

from pathlib import Path

from gencrs.data.examples import Example, build_examples
from gencrs.data.paths import resolve_data_dir
from gencrs.data.schema import Dataset, Dialogue, Item, Turn

DATASETS = ("synthetic", "redial", "inspired", "inspired_tsv", "inspired_unicrs")


def load_dataset(name: str, data_dir: str | Path | None = None, strict: bool = True, seed: int = 0) -> Dataset:
    """Load a dataset by name. `strict=False` skips malformed records but counts and reports them in `notes`."""
    if name == "synthetic":
        from gencrs.data.synthetic import load_synthetic
        return load_synthetic(seed=seed)
    root = resolve_data_dir(data_dir)
    if name == "redial":
        from gencrs.data.redial import load_redial
        return load_redial(root, strict=strict)
    if name.startswith("inspired") and name in DATASETS:
        from gencrs.data.inspired import load_inspired
        return load_inspired(root, fmt=name.partition("_")[2] or "auto", strict=strict)
    raise ValueError(f"unknown dataset '{name}' (choose from {', '.join(DATASETS)})")


__all__ = ["DATASETS", "Dataset", "Dialogue", "Example", "Item", "Turn", "build_examples", "load_dataset", "resolve_data_dir"]
