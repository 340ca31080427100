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


def check_init_adapter(directory: str | Path, base_model: str, codebook: CodeBook) -> None:
    """An adapter a LoRA run can start from: a PEFT adapter directory over the same base and code table."""
    directory = Path(directory)
    if not (directory / "adapter_config.json").exists():
        raise GencrsError(f"init_adapter {directory} is not a PEFT adapter directory (no adapter_config.json)")
    meta = json.loads((directory / "gencrs_model.json").read_text()) if (directory / "gencrs_model.json").exists() else {}
    if meta.get("base_model") != base_model:
        raise GencrsError(f"init_adapter {directory} was trained over base_model {meta.get('base_model')!r}, "
                          f"this run's base_model is {base_model!r}")
    if CodeBook.load(directory).item_codes != codebook.item_codes:
        raise GencrsError(f"init_adapter {directory} has another code table ({directory / 'codes.json'}) than this run")


def start_from_adapter(model, lora_config, directory: str | Path):
    """`model` wrapped in a new trainable adapter of `lora_config`, its weights copied from the adapter in `directory`
    (the dialogue teacher's OUT/adapter, checked by check_init_adapter): the LoRA counterpart of starting full
    fine-tuning from the teacher's model."""
    from peft import get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    peft_model = get_peft_model(model, lora_config)
    try:
        result = set_peft_model_state_dict(peft_model, load_peft_weights(str(directory), device="cpu"))
    except RuntimeError as e:  # size mismatch: another lora_r or other token rows
        raise GencrsError(f"init_adapter {directory} does not fit this run's LoRA settings: "
                          f"{str(e).splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if "lora_" in k or "token_adapter" in k]
    if result.unexpected_keys or missing:
        first = (result.unexpected_keys or missing)[0]
        raise GencrsError(f"init_adapter {directory} does not fit this run's LoRA settings "
                          f"({len(result.unexpected_keys)} unexpected and {len(missing)} missing weights; first: {first})")
    return peft_model


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

