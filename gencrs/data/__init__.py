"""Data layer: every source loads into one schema (gencrs.data.schema); examples are built from it."""

from pathlib import Path

from gencrs.data.examples import Example, build_examples
from gencrs.data.paths import resolve_data_dir
from gencrs.data.schema import Dataset, Dialogue, Item, Turn

DATASETS = ("synthetic", "redial", "redial_extended", "redial_mentions", "inspired", "inspired_tsv", "inspired_unicrs")


def load_dataset(name: str, data_dir: str | Path | None = None, strict: bool = True, seed: int = 0) -> Dataset:
    """Load a dataset: a built-in name (DATASETS), a directory in the own-data format (gencrs.data.files), or the name
    of such a directory under the data dir. `strict=False` skips malformed records but counts and reports them in
    `notes`. `seed` only changes the synthetic world."""
    from gencrs.data.files import is_dataset_dir, load_files

    if name not in DATASETS:
        for candidate in (Path(name), resolve_data_dir(data_dir) / name):
            if is_dataset_dir(candidate):
                return load_files(candidate, strict=strict)
        if Path(name).is_dir() or "/" in name:
            return load_files(name, strict=strict)  # a directory without catalog.jsonl: the loader names what is missing
    if name == "synthetic":
        from gencrs.data.synthetic import load_synthetic
        return load_synthetic(seed=seed)
    root = resolve_data_dir(data_dir)
    if name.startswith("redial") and name in DATASETS:
        from gencrs.data.redial import load_redial
        return load_redial(root, strict=strict, extended=name == "redial_extended", mentions=name == "redial_mentions")
    if name.startswith("inspired") and name in DATASETS:
        from gencrs.data.inspired import load_inspired
        return load_inspired(root, fmt=name.partition("_")[2] or "auto", strict=strict)
    raise ValueError(f"unknown dataset '{name}': not one of {', '.join(DATASETS)}, not a directory with catalog.jsonl, "
                     f"not a dataset directory under {root} (docs/data.md, 'Your own data')")


__all__ = ["DATASETS", "Dataset", "Dialogue", "Example", "Item", "Turn", "build_examples", "load_dataset", "resolve_data_dir"]
