"""Loading a base model for training (full precision or 4-bit), extending it with the semantic-ID tokens, and loading
trained gencrs models (a full directory, or a PEFT adapter over a base that is re-extended the same way)."""

import json
from pathlib import Path

import torch

from gencrs.errors import GencrsError
from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.extend import extend_model, extend_tokenizer, new_token_ids


def load_base(name_or_path: str, load_in_4bit: bool = False, dtype: str = "float32"):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    kwargs = {"dtype": getattr(torch, dtype)}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=getattr(torch, dtype))
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        raise GencrsError(f"cannot load base model '{name_or_path}': {str(e).splitlines()[0]}") from None
    return model, tokenizer


def ensure_extended(model, tokenizer, codebook: CodeBook, titles: dict[str, str]) -> list[int]:
    """Add format and code tokens unless the tokenizer has them already; returns their ids (for trainable tokens)."""
    if codebook.all_tokens()[0] not in tokenizer.get_vocab():
        extend_tokenizer(tokenizer, codebook)
        extend_model(model, tokenizer, codebook, titles)
    return new_token_ids(tokenizer, codebook)


def save_model_meta(directory: Path, codebook: CodeBook, titles: dict[str, str], base_model: str | None) -> None:
    (directory / "codes.json").write_text(json.dumps(codebook.to_json(), ensure_ascii=False), encoding="utf-8")
    (directory / "catalog.json").write_text(json.dumps(titles, ensure_ascii=False), encoding="utf-8")
    if base_model:
        (directory / "gencrs_model.json").write_text(json.dumps({"base_model": base_model}), encoding="utf-8")


def load_trained(directory: str | Path, load_in_4bit: bool = False):
    """(model, tokenizer, codebook) from a full model directory or an adapter directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    directory = Path(directory)
    if not directory.is_dir():
        raise GencrsError(f"{directory} is not a model directory")
    codebook = CodeBook.load(directory)
    if (directory / "adapter_config.json").exists():
        from peft import PeftModel
        meta = json.loads((directory / "gencrs_model.json").read_text())
        titles = json.loads((directory / "catalog.json").read_text())
        model, base_tokenizer = load_base(meta["base_model"], load_in_4bit)
        ensure_extended(model, base_tokenizer, codebook, titles)  # the same deterministic extension as in training
        return PeftModel.from_pretrained(model, directory).eval(), AutoTokenizer.from_pretrained(directory), codebook
    if not (directory / "config.json").exists():
        raise GencrsError(f"{directory} is not a model directory (no config.json or adapter_config.json)")
    return AutoModelForCausalLM.from_pretrained(directory).eval(), AutoTokenizer.from_pretrained(directory), codebook

