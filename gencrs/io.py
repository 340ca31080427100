"""Atomic writes: a reader never sees a half-written artifact, and a killed run leaves the old one intact; and the
last checkpoint a killed Trainer run finished writing, to resume from."""

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary sibling directory; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def last_complete_checkpoint(checkpoints: str | os.PathLike) -> Path | None:
    """The highest-step `checkpoint-N` under `checkpoints` that a Trainer finished writing, or None.

    HF Trainer writes a checkpoint's files in place and `trainer_state.json` last, so a run killed while saving leaves
    a directory without it, which `resume_from_checkpoint` rejects; such directories are passed over (and kept)."""
    checkpoints = Path(checkpoints)
    found = [p for p in checkpoints.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    for path in sorted(found, key=lambda p: int(p.name.split("-", 1)[1]), reverse=True):
        if (path / "trainer_state.json").is_file():
            return path
        log.warning("%s was not finished (no trainer_state.json; killed while saving?): resuming from an earlier one",
                    path)
    return None
