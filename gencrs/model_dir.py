"""The gencrs model directory: what a trained or exported model carries beside its Hugging Face files. The one module
that writes, reads and checks it.

    codes.json          the code table (tokenizer_ext.CodeBook)
    catalog.json        item id -> title, as the model writes it inside item spans
    gencrs_model.json   an adapter's base model {"base_model": NAME_OR_PATH}, and {"context_codes": true} for a model
                        whose prompts open with the codes of the context's items (gencrs.format.prompt_messages);
                        absent when neither holds
    gencrs_export.json  an export's source and dtype (recipes/export.py)

A directory is an adapter (adapter_config.json: a PEFT adapter over base_model, whose extension is redone on load) or
a full model (config.json). Only a full model can be served (`check_servable`).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from gencrs.errors import GencrsError
from tokenizer_ext.codebook import CODES_FILE, CodeBook

CODES, CATALOG, MODEL_META, EXPORT_META = CODES_FILE, "catalog.json", "gencrs_model.json", "gencrs_export.json"
SERVABLE_FILES = ("config.json", CODES, CATALOG, "tokenizer_config.json")


@dataclass
class ModelDir:
    path: Path
    kind: str  # adapter | full
    codebook: CodeBook
    titles: dict[str, str]
    base_model: str | None  # an adapter's base
    context_codes: bool  # its prompts open with the codes of the context's items


def write(directory: str | Path, codebook: CodeBook, titles: dict[str, str], base_model: str | None = None,
          export: dict | None = None, context_codes: bool = False) -> None:
    """The gencrs files of a model directory (the caller writes the weights and tokenizer into the same directory)."""
    directory = Path(directory)
    codebook.save(directory)
    (directory / CATALOG).write_text(json.dumps(titles, ensure_ascii=False), encoding="utf-8")
    meta = {**({"base_model": base_model} if base_model else {}), **({"context_codes": True} if context_codes else {})}
    if meta:
        (directory / MODEL_META).write_text(json.dumps(meta), encoding="utf-8")
    if export:
        (directory / EXPORT_META).write_text(json.dumps(export), encoding="utf-8")


def read_titles(directory: str | Path) -> dict[str, str]:
    """The item titles a model writes in its item spans."""
    path = Path(directory) / CATALOG
    if not path.exists():
        raise GencrsError(f"{path} is missing: the item-span rule needs the titles the model was trained with "
                          f"(training runs and recipes/export.py write it)")
    return json.loads(path.read_text(encoding="utf-8"))


def reads_context_codes(directory: str | Path) -> bool:
    """Whether the model in `directory` was trained with prompts that open with the codes of the context's items."""
    path = Path(directory) / MODEL_META
    return bool(path.exists() and json.loads(path.read_text()).get("context_codes"))


def read(directory: str | Path) -> ModelDir:
    path = Path(directory)
    if not path.is_dir():
        raise GencrsError(f"{path} is not a model directory")
    if (path / "adapter_config.json").exists():
        kind = "adapter"
    elif (path / "config.json").exists():
        kind = "full"
    else:
        raise GencrsError(f"{path} is not a model directory (no config.json or adapter_config.json)")
    meta = json.loads((path / MODEL_META).read_text()) if (path / MODEL_META).exists() else {}
    if kind == "adapter" and not meta.get("base_model"):
        raise GencrsError(f"adapter {path} lacks {MODEL_META}: its base model is unknown")
    return ModelDir(path, kind, CodeBook.load(path), read_titles(path), meta.get("base_model"),
                    bool(meta.get("context_codes")))


def check_servable(directory: str | Path) -> Path:
    """A directory vLLM can serve with the gencrs processor: a full (exported) model with the gencrs files."""
    path = Path(directory)
    if (path / "adapter_config.json").exists():
        raise GencrsError(f"{path} is a PEFT adapter: vLLM cannot serve its new token rows; export it first "
                          f"(python recipes/export.py model={path} out=DIR) and serve DIR")
    missing = [name for name in SERVABLE_FILES if not (path / name).exists()]
    if missing:
        raise GencrsError(f"{path} is not an exported gencrs model (missing {', '.join(missing)}); "
                          f"make one with: python recipes/export.py model=RUN_DIR/model out={path}")
    return path
