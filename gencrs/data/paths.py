import os
from pathlib import Path

from gencrs.errors import DataError

ENV_VAR = "GENCRS_DATA_DIR"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """data_dir, else $GENCRS_DATA_DIR, else ./data. The layout is the one of shared/data (see docs/data.md)."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path("data")


def require(path: Path, dataset: str, download_hint: str) -> Path:
    if not path.exists():
        raise DataError(
            f"{dataset}: {path} not found (data dir from data_dir=, ${ENV_VAR} or ./data). {download_hint}"
        )
    return path
