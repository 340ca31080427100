"""Loading a base model for training (full precision or 4-bit), extending it with the semantic-ID tokens, and loading
trained gencrs models (a full directory, or a PEFT adapter over a base that is re-extended the same way)."""

import os
from pathlib import Path

import torch

from gencrs import model_dir
from gencrs.errors import GencrsError
from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.extend import extend_model, extend_tokenizer, new_token_ids


def placement(load_in_4bit: bool = False, dtype: str = "auto") -> dict:
    """from_pretrained keyword arguments that put a model where this process computes: dtype ("auto": bfloat16 on
    CUDA, float32 on the CPU), 4-bit NF4 quantization, and on CUDA every weight on this process's GPU
    (device_map {"": LOCAL_RANK}: under several processes each rank holds its own copy on its own GPU; a 4-bit model
    cannot be moved after loading, and without the map every rank's copy would land on GPU 0)."""
    kwargs = {"dtype": resolve_dtype(dtype)}
    if torch.cuda.is_available():
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=kwargs["dtype"])
    return kwargs


def resolve_dtype(dtype: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if dtype not in ("float32", "bfloat16", "float16"):
        raise GencrsError(f"dtype must be auto, float32, bfloat16 or float16, not {dtype!r}")
    return getattr(torch, dtype)


def ensure_pad_token(tokenizer) -> None:
    """The pad-token rule: a tokenizer without one (Llama-3.1-Instruct) pads with its end-of-sequence token, as TRL
    does. Padded positions are masked out of attention and carry label -100, so the choice never reaches the loss,
    and the generated turn ends at the first end-of-sequence token either way."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise GencrsError(f"tokenizer of {tokenizer.name_or_path} has neither a pad nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token


def load_model(name_or_path: str | Path, load_in_4bit: bool = False, dtype: str = "auto"):
    """The one loading function: (model, tokenizer) of an HF directory or hub name, placed by `placement`, with the
    pad-token rule applied. Training, the teachers, the teacher cache, evaluation and export all load through it."""
    from transformers import AutoModelForCausalLM
    tokenizer = load_tokenizer(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **placement(load_in_4bit, dtype))
    except OSError as e:
        raise GencrsError(f"cannot load model '{name_or_path}': {str(e).splitlines()[0]}") from None
    return model, tokenizer


def load_tokenizer(name_or_path: str | Path):
    """A model's tokenizer with the pad-token rule applied."""
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except OSError as e:
        hint = (" (a gated model: accept its license on the hub and log in with a token, or set base_model to a local "
                "copy; README, 'Your own base model')") if "gated" in str(e).lower() else ""
        raise GencrsError(f"cannot load the tokenizer of '{name_or_path}': {str(e).splitlines()[0]}{hint}") from None
    ensure_pad_token(tokenizer)
    return tokenizer


def ensure_extended(model, tokenizer, codebook: CodeBook, titles: dict[str, str]) -> list[int]:
    """Add format and code tokens unless the tokenizer has them already; returns their ids (for trainable tokens)."""
    if codebook.all_tokens()[0] not in tokenizer.get_vocab():
        extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
        extend_model(model, tokenizer, codebook, titles)
    return new_token_ids(tokenizer, codebook, SPECIAL_TOKENS)


def check_init_adapter(directory: str | Path, base_model: str, codebook: CodeBook) -> None:
    """An adapter a LoRA run can start from: a PEFT adapter directory over the same base and code table."""
    directory = Path(directory)
    if not (directory / "adapter_config.json").exists():
        raise GencrsError(f"init_adapter {directory} is not a PEFT adapter directory (no adapter_config.json)")
    adapter = model_dir.read(directory)
    if adapter.base_model != base_model:
        raise GencrsError(f"init_adapter {directory} was trained over base_model {adapter.base_model!r}, "
                          f"this run's base_model is {base_model!r}")
    if adapter.codebook.item_codes != codebook.item_codes:
        raise GencrsError(f"init_adapter {directory} has another code table ({directory / model_dir.CODES}) than this run")


def start_from_adapter(model, lora_config, directory: str | Path):
    """`model` wrapped in a new trainable adapter of `lora_config`, its weights copied from the adapter in `directory`
    (the dialogue teacher's OUT/adapter, checked by check_init_adapter): the LoRA counterpart of starting full
    fine-tuning from the teacher's model."""
    from peft import get_peft_model, set_peft_model_state_dict
    from peft.utils import load_peft_weights

    out = model.get_output_embeddings()
    tied = out is not None and out.weight is model.get_input_embeddings().weight
    peft_model = get_peft_model(model, lora_config)
    try:
        result = set_peft_model_state_dict(peft_model, load_peft_weights(str(directory), device="cpu"))
    except RuntimeError as e:  # size mismatch: another lora_r or other token rows
        raise GencrsError(f"init_adapter {directory} does not fit this run's LoRA settings: "
                          f"{str(e).splitlines()[-1].strip()}") from None
    # With tied embeddings (SmolLM2) lm_head's new-token rows are embed_tokens' own tensor: loading embed_tokens' fills
    # both, and PEFT saves lm_head's under a name it does not load back.
    tied_rows = lambda key: tied and "lm_head.token_adapter.trainable_tokens_delta" in key
    unexpected = [k for k in result.unexpected_keys if not tied_rows(k)]
    missing = [k for k in result.missing_keys if ("lora_" in k or "token_adapter" in k) and not tied_rows(k)]
    if unexpected or missing:
        first = (unexpected or missing)[0]
        raise GencrsError(f"init_adapter {directory} does not fit this run's LoRA settings "
                          f"({len(unexpected)} unexpected and {len(missing)} missing weights; first: {first})")
    return peft_model


def load_trained(directory: str | Path, load_in_4bit: bool = False, dtype: str = "auto"):
    """(model, tokenizer, codebook) from a full model directory or an adapter directory (its base loaded by
    `load_model`, re-extended, the adapter on top), in eval mode."""
    from peft import PeftModel
    found = model_dir.read(directory)
    if found.kind == "adapter":
        model, base_tokenizer = load_model(found.base_model, load_in_4bit, dtype)
        ensure_extended(model, base_tokenizer, found.codebook, found.titles)  # the same deterministic extension as in training
        model, tokenizer = PeftModel.from_pretrained(model, found.path), load_tokenizer(found.path)
    else:
        model, tokenizer = load_model(found.path, load_in_4bit, dtype)
    return model.eval(), tokenizer, found.codebook


MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")
# Causal LMs whose logits are exactly the output layer applied to the last hidden state (no soft-capping or scaling)
PLAIN_HEAD_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def completion_logits(model, inputs: dict, mask: torch.Tensor, unwrapped=None) -> tuple[torch.Tensor, object]:
    """Logits (N, V) at the N positions `mask` (B, T-1) selects (position t predicts token t+1; row-major order), and
    the model's outputs. The forward goes through `model` as given (DDP and PEFT wrappers included) with
    `logits_to_keep=1`; the output layer of `unwrapped` (the model without its DDP wrapper; default `model`) is then
    applied to the final hidden states at the selected positions only: a turn is ~25 tokens of a ~400-token record.
    Models whose forward changes the logits after the output layer (soft-capping, scaling) take full logits."""
    unwrapped = model if unwrapped is None else unwrapped
    if getattr(unwrapped.config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return full_logits(model, inputs, mask)
    outputs = model(**{k: v for k, v in inputs.items() if k in MODEL_INPUTS}, use_cache=False,
                    output_hidden_states=True, logits_to_keep=1)
    hidden = outputs.hidden_states[-1][:, :-1][mask]
    return unwrapped.get_output_embeddings()(hidden), outputs


def full_logits(model, inputs: dict, mask: torch.Tensor) -> tuple[torch.Tensor, object]:
    """The same from the model's full (B, T, V) logits."""
    outputs = model(**{k: v for k, v in inputs.items() if k in MODEL_INPUTS}, use_cache=False)
    return outputs.logits[:, :-1][mask], outputs
