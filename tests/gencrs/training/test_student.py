"""The ConKD student run on real parts (tiny Llama, real tokenizer extension, real R-GCN teacher, synthetic data):
what trains, what the run directory holds, and that a killed run resumes to the planned state."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from gencrs.training.student import StudentRunConfig, train_student

REPO = Path(__file__).resolve().parents[3]


class GradientProbe(TrainerCallback):
    """Records, before the first optimizer step, which parameters received a gradient."""

    def __init__(self):
        self.with_grad, self.frozen_with_grad, self.trainable = set(), set(), set()

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if state.global_step > 0:
            return
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.trainable.add(name)
            if p.grad is not None and p.grad.abs().sum() > 0:
                (self.with_grad if p.requires_grad else self.frozen_with_grad).add(name)


def test_conkd_lora_run_trains_only_trainable_parameters_and_writes_the_run_directory(student_values, tmp_path):
    probe = GradientProbe()
    summary = train_student(StudentRunConfig(**student_values(tmp_path / "run", max_steps=2)), [probe])
    assert summary["steps"] == 2
    assert not probe.frozen_with_grad
    assert probe.with_grad and probe.with_grad <= probe.trainable
    # LoRA B starts at zero, so at the first step only B (not A) has a gradient; both are trainable
    assert any("lora_B" in n for n in probe.with_grad) and any("lora_A" in n for n in probe.trainable)
    # the new token rows (PEFT trainable tokens) learn in both the input embedding and the untied lm_head
    assert any("embed_tokens" in n and "token_adapter" in n for n in probe.with_grad)
    assert any("lm_head" in n and "token_adapter" in n for n in probe.with_grad)
    assert not any("lora" not in n and "token_adapter" not in n for n in probe.trainable)  # the base stays frozen

    run = tmp_path / "run"
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train_logs = [r for r in logs if "loss" in r]
    assert [r["step"] for r in train_logs] == [1, 2]
    for row in train_logs:
        assert {"nll", "kd_dialogue", "kd_rec", "gate"} <= row.keys() and 0 <= row["gate"] <= 1
        # code positions are a subset of the completion, so the rec term's excess over NLL is larger there
        assert {"nll_code", "kd_rec_code"} <= row.keys()
        assert abs(row["kd_rec_code"] - row["nll_code"]) >= abs(row["kd_rec"] - row["nll"]) - 1e-3
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["gamma"] == 0.5 and len(manifest["data"]["sha256"]) == 64
    assert manifest["versions"]["transformers"] and len(manifest["code"]["sources_sha256"]) == 64
    assert (run / "loss.png").stat().st_size > 0 and any((run / "tensorboard").iterdir())
    from gencrs.model import load_trained
    model, tokenizer, codebook = load_trained(run / "adapter")
    assert len(tokenizer) == model.get_input_embeddings().weight.shape[0]


def test_gamma_zero_needs_no_teacher(student_values, tmp_path):
    values = student_values(tmp_path / "sft", max_steps=1, gamma=0.0,
                            dialogue_teacher=str(tmp_path / "absent"), rec_teacher=str(tmp_path / "absent"))
    summary = train_student(StudentRunConfig(**values))
    row = [json.loads(line) for line in (tmp_path / "sft" / "log.jsonl").read_text().splitlines()][0]
    assert summary["steps"] == 1 and row["kd_dialogue"] == 0 and row["gate"] == 0


def test_missing_teacher_is_a_clear_error(student_values, tmp_path):
    from gencrs.errors import GencrsError
    values = student_values(tmp_path / "x", rec_teacher=str(tmp_path / "nope"))
    with pytest.raises(GencrsError, match="rec_teacher .*nope does not exist"):
        train_student(StudentRunConfig(**values))


def test_qlora_path_trains_on_cpu(student_values, tmp_path):
    """bitsandbytes NF4 base + LoRA, the 8B recipe's layout, on the tiny model (STACK.md: NF4 runs on this CPU)."""
    values = student_values(tmp_path / "qlora", max_steps=2, load_in_4bit=True, teacher_outputs="online")
    summary = train_student(StudentRunConfig(**values))
    logs = [json.loads(line) for line in (tmp_path / "qlora" / "log.jsonl").read_text().splitlines()]
    assert summary["steps"] == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in logs if "loss" in r)
    config = json.loads((tmp_path / "qlora" / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"


class StartingAdapter(TrainerCallback):
    """Keeps the adapter weights (as PEFT saves them) the model has when training begins."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from peft import get_peft_model_state_dict
        self.weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def test_lora_student_starts_from_the_dialogue_teachers_adapter(student_values, student_parts, tmp_path):
    from safetensors.torch import load_file

    from gencrs.errors import GencrsError

    # a LoRA dialogue teacher: plain SFT (gamma 0) for 2 steps, so its lora_B is no longer the fresh init (zeros)
    train_student(StudentRunConfig(**student_values(tmp_path / "teacher", gamma=0.0, max_steps=2)))
    adapter = tmp_path / "teacher" / "adapter"
    teacher = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in teacher.items())

    start = StartingAdapter()
    train_student(StudentRunConfig(**student_values(tmp_path / "student", max_steps=2, init_adapter=str(adapter))), [start])
    assert start.weights.keys() == teacher.keys()
    assert all(torch.equal(start.weights[k], teacher[k]) for k in teacher)
    student = load_file(tmp_path / "student" / "adapter" / "adapter_model.safetensors")
    assert any(not torch.equal(student[k], teacher[k]) for k in teacher)  # and it trained from there

    with pytest.raises(GencrsError, match="init_adapter .* does not fit this run's LoRA settings"):
        train_student(StudentRunConfig(**student_values(tmp_path / "r8", lora_r=8, init_adapter=str(adapter))))
    with pytest.raises(GencrsError, match="init_adapter .* over base_model"):
        train_student(StudentRunConfig(**student_values(tmp_path / "other", init_adapter=str(adapter),
                                                   base_model=student_parts["dialogue_teacher"])))
    with pytest.raises(GencrsError, match="init_adapter needs finetune=lora"):
        train_student(StudentRunConfig(**student_values(tmp_path / "full", finetune="full", init_adapter=str(adapter))))


KILL_SCRIPT = """
import logging, os, signal, sys
from transformers import TrainerCallback
from gencrs.config import load_config
from gencrs.training.student import StudentRunConfig, train_student

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, as with a killed job

if "KILL_IN_SAVE_AT_STEP" in os.environ:  # killed inside a checkpoint's save: weights and optimizer written, state not
    from transformers import TrainerState
    save_state = TrainerState.save_to_json
    def save_or_die(self, path):
        if self.global_step == int(os.environ["KILL_IN_SAVE_AT_STEP"]) and "checkpoint-" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)
        save_state(self, path)
    TrainerState.save_to_json = save_or_die

logging.basicConfig(level=logging.INFO)
train_student(load_config(StudentRunConfig, sys.argv[1:]), [Kill()] if "KILL_AT_STEP" in os.environ else [])
"""


def run_script(tmp_path, values: dict, kill_at: int | None = None, in_save: bool = False) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if kill_at:
        env["KILL_IN_SAVE_AT_STEP" if in_save else "KILL_AT_STEP"] = str(kill_at)
    return subprocess.run([sys.executable, str(script), *[f"{k}={v}" for k, v in values.items()]], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("kill_at, in_save, left", [(5, False, ["checkpoint-2", "checkpoint-4"]),
                                                     (6, True, ["checkpoint-2", "checkpoint-4", "checkpoint-6"])],
                         ids=["between-saves", "inside-a-save"])
def test_killed_run_resumes_to_the_planned_state(student_values, tmp_path, kill_at, in_save, left):
    """Killed (SIGKILL) at step 5 of 8 with checkpoints every 2 steps, or while checkpoint-6 is being written (its
    weights and optimizer on disk, trainer_state.json not yet), then restarted: it resumes from checkpoint-4, the last
    complete one, and ends at step 8 with the optimizer state of an uninterrupted run."""
    plan = dict(max_steps=8, save_steps=2, lora_dropout=0.0)
    killed = student_values(tmp_path / "killed", **plan)
    result = run_script(tmp_path, killed, kill_at=kill_at, in_save=in_save)
    assert result.returncode == -9, result.stderr[-2000:]
    checkpoints = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == left
    if in_save:
        half_written = tmp_path / "killed" / "checkpoints" / "checkpoint-6"
        assert (half_written / "optimizer.pt").exists() and not (half_written / "trainer_state.json").exists()
    resumed = run_script(tmp_path, killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "checkpoint-4" in resumed.stderr
    straight = run_script(tmp_path, student_values(tmp_path / "straight", **plan))
    assert straight.returncode == 0, straight.stderr[-2000:]

    for run in ("killed", "straight"):
        assert json.loads((tmp_path / run / "summary.json").read_text())["steps"] == 8
    a = torch.load(tmp_path / "killed" / "checkpoints" / "checkpoint-8" / "optimizer.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "straight" / "checkpoints" / "checkpoint-8" / "optimizer.pt", weights_only=False)["state"]
    assert a.keys() == b.keys() and len(a) > 0
    for key in a:
        assert a[key]["step"] == b[key]["step"] == 8
        torch.testing.assert_close(a[key]["exp_avg"], b[key]["exp_avg"], atol=1e-5, rtol=1e-3)
        torch.testing.assert_close(a[key]["exp_avg_sq"], b[key]["exp_avg_sq"], atol=1e-7, rtol=1e-3)
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 9))  # the log was cut back to the checkpoint, no step logged twice


def test_two_processes_train_together(student_values, tmp_path):
    """The recipe under torchrun with 2 CPU processes (gloo): the 32 records are split between the ranks, so one epoch
    at batch 4 takes 4 synchronized steps instead of 8, and rank 0 alone evaluates and writes the table.
    (`accelerate launch --num_processes 2 --cpu` starts a single process on this machine, STACK.md; torchrun is
    the multi-process CPU launcher, `accelerate launch --config_file` the GPU one.)"""
    values = student_values(tmp_path / "ddp", max_steps=-1, epochs=1, save_steps=100)
    values.update(build_missing=False, eval_generate=False, eval_limit=4)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             str(REPO / "recipes" / "sft_conkd.py"), *[f"{k}={v}" for k, v in values.items()]],
                            env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4 and summary["train_records"] == 32
    assert result.stdout.count("| recall@1 |") == 1  # one evaluation table, from rank 0


def test_teacher_cache_is_rebuilt_when_a_teacher_changes(student_values, tmp_path):
    from gencrs.teachers.outputs import TeacherCache
    values = student_values(tmp_path / "a", max_steps=1, teacher_cache=str(tmp_path / "cache"))
    train_student(StudentRunConfig(**values))
    first = TeacherCache(tmp_path / "cache").fingerprint()
    assert not (tmp_path / "cache" / "partial").exists()  # a finished build leaves no resume shards behind
    train_student(StudentRunConfig(**{**values, "out": str(tmp_path / "b")}))
    assert TeacherCache(tmp_path / "cache").fingerprint() == first  # same teachers: reused
    train_student(StudentRunConfig(**{**values, "out": str(tmp_path / "c"), "top_k": 4}))
    assert TeacherCache(tmp_path / "cache").fingerprint() not in (first, None)  # other settings: rebuilt


class PaddingProbe(TrainerCallback):
    """At the start of training, the share of padding in every batch the train dataloader yields."""

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        mask = [batch["attention_mask"] for batch in train_dataloader]
        self.padding = 1 - sum(int(m.sum()) for m in mask) / sum(m.numel() for m in mask)


def test_length_grouped_batches_pad_less_and_keep_teacher_outputs_aligned(student_values, tmp_path):
    """group_by_length reorders the records; the cached teacher rows are looked up by record index, so training still
    runs (the trainer raises when a row does not cover its completion tokens) and the batches carry less padding."""
    padding = {}
    for grouped in (False, True):
        probe = PaddingProbe()
        summary = train_student(StudentRunConfig(**student_values(tmp_path / str(grouped), max_steps=2,
                                                             group_by_length=grouped)), [probe])
        assert summary["steps"] == 2
        padding[grouped] = probe.padding
    assert padding[True] < 0.85 * padding[False]  # seed 0: 0.28 vs 0.36 of the tokens (0.21 vs 0.37 before the titles told the genre)


def test_teacher_records_recommend_the_rec_teachers_top_item_and_train_only_its_codes(student_values, tmp_path):
    """teacher_records: every train turn without a gold target gets a twin record that recommends the rec teacher's
    top item outside its context, with the turn's own context fitted to max_length (a twin's turn is often longer
    than its source's, and TRL would cut its end); in training only the twin's code tokens carry loss (the intent,
    span markers and response do not, so the student does not learn to recommend more often). Code tokens weigh
    code_loss_weight, the first level's first_code_loss_weight, in every record."""
    from gencrs.data.protocols import Context
    from gencrs.data.records import examples_by_key
    from gencrs.teachers.rec import RecTeacher
    from gencrs.training.student import build_student_trainer

    values = student_values(tmp_path / "run", teacher_records=True, max_steps=2, max_length=96,
                            teacher_cache=str(tmp_path / "cache"), code_loss_weight=5.0, first_code_loss_weight=15.0)
    run, records, trainer = build_student_trainer(StudentRunConfig(**values))
    examples = examples_by_key(run.dataset, "train")
    plain = [r for r in records.train if not r.get("codes_only")]
    twins = [r for r in records.train if r.get("codes_only")]
    untargeted = [r for r in plain if not examples[r["key"]].targets]
    assert len(plain) == 32 and untargeted and [t["key"] for t in twins] == [f"teacher:{r['key']}" for r in untargeted]
    length = lambda r: len(trainer.processing_class.apply_chat_template(r["prompt"] + r["completion"], tokenize=True,
                                                                          return_dict=False))
    assert all(length(t) <= 96 for t in twins)
    assert any(len(t["prompt"]) < len(r["prompt"]) for t, r in zip(twins, untargeted))  # some had to drop more context

    teacher = RecTeacher.load(values["rec_teacher"])
    sources = [examples[r["key"]] for r in untargeted]
    top = teacher.rank([Context(e.key, e.context, e.context_items, list(e.context_items)) for e in sources], 1)
    for twin, source, record, (item,) in zip(twins, sources, untargeted, top):
        assert twin["prompt"] == record["prompt"][len(record["prompt"]) - len(twin["prompt"]):]  # its newest messages
        assert item not in source.context_items
        assert "".join(run.codebook.text(item)) in twin["completion"][0]["content"]

    dataset = trainer.train_dataset
    rows = [n for n in range(len(dataset)) if records.train[dataset[n]["example_index"]].get("codes_only")][:2]
    rows += [n for n in range(len(dataset)) if not records.train[dataset[n]["example_index"]].get("codes_only")][:2]
    batch = trainer.data_collator([dataset[n] for n in rows])
    mask = batch["labels"][:, 1:] != -100
    gold = batch["labels"][:, 1:][mask]
    weights = trainer.position_weights(gold, batch["example_index"], mask)
    is_code = torch.isin(gold, trainer.code_token_ids)
    first_level = {run.codebook.tokens(item)[0] for item in run.codebook.item_codes}
    is_first = torch.tensor([t in first_level for t in trainer.processing_class.convert_ids_to_tokens(gold.tolist())])
    row_of = torch.arange(len(rows))[:, None].expand_as(mask)[mask]
    twin_rows = row_of < 2
    assert is_first.any() and (is_code & ~is_first).any() and not (is_first & ~is_code).any()
    assert (weights[is_first] == 15).all() and (weights[is_code & ~is_first] == 5).all()  # every row's codes
    assert (weights[twin_rows & ~is_code] == 0).all() and (twin_rows & ~is_code).any()
    assert (weights[~twin_rows & ~is_code] == 1).all()  # the dataset's own turns train every completion token

    assert train_student(StudentRunConfig(**values))["steps"] == 2  # the cache holds the twins' teacher outputs


def test_rec_temperature_reaches_the_loss_at_code_positions_only(student_values, tmp_path):
    """The trainer reads rec_temperature from self.args and hands it to the ConKD loss: on one batch, a sharper rec
    teacher changes the loss at the code positions (eta = 0 opens the hard gate at every position; the fixture's
    dialogue teacher puts too little mass on codes to open it) and nowhere else."""
    from gencrs.training.student import build_student_trainer

    values = student_values(tmp_path / "run", max_steps=1, eta=0.0, teacher_cache=str(tmp_path / "cache"))
    _, _, trainer = build_student_trainer(StudentRunConfig(**values))
    dataset = trainer.train_dataset
    rows = [n for n in range(len(dataset)) if set(dataset[n]["input_ids"]) & set(trainer.code_token_ids.tolist())][:4]
    batch = trainer.data_collator([dataset[n] for n in rows])
    mask = batch["labels"][:, 1:] != -100
    gold = batch["labels"][:, 1:][mask]
    trainer.model.train()
    loss = {}
    with torch.no_grad():
        logits, _ = trainer.completion_logits(trainer.model, batch, mask)
        # an untrained student's code logits are nearly flat, where every r gives about log K: spread them
        logits = logits + 3 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0))
        for temperature in (1.0, 0.25):
            trainer.args.rec_temperature = temperature
            loss[temperature] = trainer.token_loss(logits, gold, batch, mask)
    is_code = trainer.token_level[gold] >= 0
    assert is_code.any() and (~is_code).any()
    torch.testing.assert_close(loss[0.25][~is_code], loss[1.0][~is_code])
    assert ((loss[0.25] - loss[1.0]).abs()[is_code] > 1e-3).all()


def test_teacher_records_items_twins_recommend_the_teachers_top_items_in_order(student_values, tmp_path):
    """teacher_records_items=3: each twin's target span holds the rec teacher's top 3 items outside the context, best
    first, and its cached rec-teacher rows are one code distribution per code slot of the three; the default cache
    path tells the setting apart, so runs with one and with three items do not rebuild each other's cache."""
    from gencrs.data.protocols import recommender_context
    from gencrs.data.records import examples_by_key
    from gencrs.teachers.rec import RecTeacher
    from gencrs.training.student import build_student_trainer, teacher_cache_dir

    values = student_values(tmp_path / "run", teacher_records=True, teacher_records_items=3, max_steps=1,
                            max_length=96)
    default_cache = {**values, "teacher_cache": None}
    assert teacher_cache_dir(StudentRunConfig(**default_cache)).name.endswith("_teacher_records3")
    one_item = StudentRunConfig(**{**default_cache, "teacher_records_items": 1})
    assert teacher_cache_dir(one_item).name.endswith("_teacher_records")
    cfg = StudentRunConfig(**{**values, "teacher_cache": str(tmp_path / "cache")})
    run, records, trainer = build_student_trainer(cfg)
    examples = examples_by_key(run.dataset, "train")
    twins = [r for r in records.train if r.get("codes_only")]
    sources = [examples[t["key"].removeprefix("teacher:")] for t in twins]
    teacher = RecTeacher.load(values["rec_teacher"])
    tops = teacher.rank([recommender_context(e) for e in sources], 3)
    assert twins and all(len(top) == 3 for top in tops)
    for twin, top in zip(twins, tops):
        assert "".join("".join(run.codebook.text(item)) for item in top) in twin["completion"][0]["content"]
    rows = trainer.teachers.rows([records.train.index(twins[0])], {}, None)
    assert rows[0]["rec"].shape == (3 * run.codebook.levels, run.codebook.codes_per_level)


def test_teacher_records_items_below_one_is_refused(student_values, tmp_path):
    from gencrs.errors import GencrsError
    from gencrs.training.student import conkd_args

    with pytest.raises(GencrsError, match="teacher_records_items"):
        conkd_args(StudentRunConfig(**student_values(tmp_path / "run", teacher_records=True, teacher_records_items=0)))


def test_cross_fitted_rec_teachers_label_each_train_turn_with_the_teacher_of_its_fold(student_values,
                                                                                   untrained_rec_teacher, tmp_path):
    """rec_teacher_folds: the twins recommend, and the cached code distributions distil, the fold teacher that left the
    turn's dialogue out (two different untrained teachers here, so a turn read by the wrong one shows); the default
    cache path tells the setting apart."""
    from gencrs.data.protocols import recommender_context
    from gencrs.data.records import examples_by_key
    from gencrs.data.splits import fold_of
    from gencrs.teachers.outputs import online_rec_outputs
    from gencrs.teachers.rec import RecTeacher
    from gencrs.training.student import build_student_trainer, teacher_cache_dir

    folds = [untrained_rec_teacher(tmp_path / f"rec_fold{fold}" / "teacher", seed=10 + fold, holdout_fold=fold, folds=2)
             for fold in range(2)]
    teachers = [RecTeacher.load(directory) for directory in folds]
    values = student_values(tmp_path / "run", teacher_records=True, rec_teacher_folds=folds, max_steps=1,
                            max_length=96, teacher_cache=str(tmp_path / "cache"))
    assert "_crossfit2" in teacher_cache_dir(StudentRunConfig(**{**values, "teacher_cache": None})).name
    run, records, trainer = build_student_trainer(StudentRunConfig(**values))
    examples = examples_by_key(run.dataset, "train")
    twins = [r for r in records.train if r.get("codes_only")]
    sources = [examples[t["key"].removeprefix("teacher:")] for t in twins]
    fold_of_turn = [fold_of(e.dialogue_id, 2) for e in sources]
    assert set(fold_of_turn) == {0, 1}
    disagree, twin_targets = 0, {}
    for twin, source, fold in zip(twins, sources, fold_of_turn):
        (own,) = teachers[fold].rank([recommender_context(source)], 1)
        (other,) = teachers[1 - fold].rank([recommender_context(source)], 1)
        assert "".join(run.codebook.text(own[0])) in twin["completion"][0]["content"]
        disagree += own != other
        twin_targets[twin["key"]] = own
    assert disagree  # the two teachers differ, so the check above can fail

    targeted = [n for n, r in enumerate(records.train) if not r.get("codes_only") and examples[r["key"]].targets][:8]
    twin_rows = [n for n, r in enumerate(records.train) if r.get("codes_only")]
    for n in targeted + twin_rows:
        key = records.train[n]["key"]  # a twin's key is `teacher:<its source's key>`
        source = examples[key.removeprefix("teacher:")]
        targets = twin_targets.get(key, source.targets)
        teacher = teachers[fold_of(source.dialogue_id, 2)]
        context = replace(recommender_context(source), key=key, exclude=[])
        expected = online_rec_outputs(teacher, [context], [targets], run.codebook)[0]
        cached = trainer.teachers.rows([n], {}, None)[0]["rec"]
        torch.testing.assert_close(cached.float(), expected.float(), atol=2e-3, rtol=0)


def test_cross_fitting_needs_two_fold_teachers_that_exist(student_values, tmp_path):
    from gencrs.errors import GencrsError
    from gencrs.training.student import check_teachers

    values = student_values(tmp_path / "run")
    with pytest.raises(GencrsError, match="at least 2"):
        check_teachers(StudentRunConfig(**{**values, "rec_teacher_folds": [values["rec_teacher"]]}))
    with pytest.raises(GencrsError, match=r"rec_teacher_folds\[1\] .*absent does not exist"):
        check_teachers(StudentRunConfig(**{**values, "rec_teacher_folds": [values["rec_teacher"], str(tmp_path / "absent")]}))
