"""The one loading function: placement (dtype, 4-bit, this process's GPU) and the pad-token rule."""

import json
import shutil

import pytest
import torch
from transformers import TrainerCallback

from gencrs.errors import GencrsError
from gencrs.model import ensure_pad_token, load_trained, placement


def test_on_the_cpu_the_model_loads_in_float32_without_a_device_map():
    kwargs = placement()
    assert kwargs == {"dtype": torch.float32}
    assert placement(dtype="bfloat16") == {"dtype": torch.bfloat16}
    with pytest.raises(GencrsError, match="dtype must be"):
        placement(dtype="float")


def test_on_cuda_each_process_loads_onto_its_own_gpu_in_bfloat16(monkeypatch):
    # Mocked: no GPU here. What is checked is the keyword arguments handed to from_pretrained.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    kwargs = placement(load_in_4bit=True)
    assert kwargs["device_map"] == {"": 3} and kwargs["dtype"] == torch.bfloat16
    quant = kwargs["quantization_config"]
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_compute_dtype == torch.bfloat16
    monkeypatch.delenv("LOCAL_RANK")
    assert placement()["device_map"] == {"": 0}


def test_a_tokenizer_without_pad_pads_with_its_end_of_sequence_token(tiny_base):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.pad_token = None
    ensure_pad_token(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.pad_token_id == tokenizer.eos_token_id
    tokenizer.pad_token = tokenizer.eos_token = None
    with pytest.raises(GencrsError, match="neither a pad nor an end-of-sequence token"):
        ensure_pad_token(tokenizer)


@pytest.fixture(scope="module")
def base_without_pad(tiny_base, tmp_path_factory):
    """The tiny base with the pad token removed from its tokenizer and config: the Llama-3.1-Instruct case."""
    from transformers import AutoTokenizer
    out = tmp_path_factory.mktemp("no_pad") / "base"
    shutil.copytree(tiny_base, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    config["pad_token_id"] = None
    (out / "config.json").write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(out).pad_token is None
    return out


def test_a_base_without_pad_token_trains_and_evaluates(base_without_pad, synthetic_generative, tmp_path):
    from eval.run import EvalConfig, evaluate
    from gencrs.training.sft import SFTRunConfig, train_sft

    summary = train_sft(SFTRunConfig(
        dataset="synthetic", base_model=str(base_without_pad), semantic_ids=synthetic_generative["semantic_ids"], out=str(tmp_path / "run"),
        finetune="lora", lora_r=4, lora_alpha=8, max_length=256, batch_size=4, max_steps=2, train_limit=8, valid_limit=4,
        save_steps=100, logging_steps=1))
    assert summary["steps"] == 2 and summary["eval_loss"] > 0
    model, tokenizer, _ = load_trained(tmp_path / "run" / "adapter")
    assert tokenizer.pad_token == tokenizer.eos_token  # the rule, saved with the model
    result = evaluate(EvalConfig(model=str(tmp_path / "run" / "adapter"), dataset="synthetic", split="valid",
                                 protocol="recommender", limit=5, k=5, batch_size=4, generate=True, max_new_tokens=24,
                                 out=str(tmp_path / "eval")))
    assert result["contexts"] == 5 and result["invalid_ranked_sequences"] == 0
    assert result["generation"]["turns"] >= 5 and result["generation"]["invalid_target_sequences"] == 0


@pytest.mark.gpu
def test_bfloat16_and_4bit_loads_put_every_weight_on_this_processs_gpu(real_generative):
    from gencrs.model import load_model

    model, tokenizer = load_model(real_generative["model"])  # dtype auto: bfloat16 on CUDA
    assert {p.device for p in model.parameters()} == {torch.device("cuda", 0)}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    quantized, _ = load_model(real_generative["model"], load_in_4bit=True)
    layer = quantized.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "Linear4bit" and layer.weight.device.type == "cuda"
    assert {p.device.type for p in quantized.parameters()} == {"cuda"}
    ids = tokenizer("I like comedies", return_tensors="pt").to("cuda")
    with torch.no_grad():
        a, b = model(**ids).logits.float(), quantized(**ids).logits.float()
    assert torch.isfinite(b).all() and torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.8


class DeviceOfModel(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.devices = {p.device.type for p in model.parameters()}
        self.trainable = {p.dtype for p in model.parameters() if p.requires_grad}  # TRL keeps QLoRA adapters in bf16


@pytest.mark.gpu
@pytest.mark.parametrize("teacher_outputs", ["cache", "online"])
def test_qlora_conkd_steps_on_cuda(real_generative, student_parts, teacher_outputs, tmp_path):
    from gencrs.training.student import StudentRunConfig, train_student

    seen = DeviceOfModel()
    summary = train_student(StudentRunConfig(
        dataset="synthetic", base_model=real_generative["base"], semantic_ids=real_generative["semantic_ids"], out=str(tmp_path / "run"),
        dialogue_teacher=real_generative["model"], rec_teacher=student_parts["rec_teacher"],
        teacher_outputs=teacher_outputs, teacher_cache=str(tmp_path / "cache"), finetune="lora", load_in_4bit=True,
        lora_r=8, lora_alpha=16, max_length=256, batch_size=4, max_steps=4, train_limit=4, valid_limit=4, lr=2e-3,
        warmup_ratio=0.0, save_steps=100, logging_steps=1, gamma=0.5, gate="hard", eta=0.5, top_k=8), callbacks=[seen])
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert summary["steps"] == 4 and seen.devices == {"cuda"} and seen.trainable == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    model, _, _ = load_trained(tmp_path / "run" / "adapter", load_in_4bit=True)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
