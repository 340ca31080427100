import os
from pathlib import Path

import pytest

# Tests never reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENCRS_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ReDial/INSPIRED files (the layout of shared/data); tests that need them skip, saying why, when absent."""
    if not (SHARED_DATA / "redial").is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA} (set GENCRS_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redial(shared_data):
    from gencrs.data import load_dataset
    return load_dataset("redial", data_dir=shared_data)


@pytest.fixture(scope="session")
def synthetic():
    from gencrs.data import load_dataset
    return load_dataset("synthetic")
