"""The main job: train one model that writes intent -> target semantic IDs -> response, distilled from the dialogue
teacher and the knowledge-graph recommendation teacher with a per-token gate (ConKD), then evaluate it.

    accelerate launch recipes/sft_conkd.py                                   # synthetic_tiny, the whole chain on CPU
    accelerate launch recipes/sft_conkd.py --config recipes/configs/sft_conkd_redial_tiny.yaml gate=soft
    accelerate launch --config_file accelerate_config.yaml recipes/sft_conkd.py --config recipes/configs/sft_conkd_redial_8b_qlora.yaml
    python recipes/sft_conkd.py gamma=0 out=runs/sft_only_synthetic            # plain SFT: the same recipe

With `build_missing` (the CPU configs), artifacts the run needs and cannot find are built first, each with its own
recipe's config: the tiny base (recipes/make_tiny_base.py), semantic IDs (recipes/build_semantic_ids.py), the
recommendation teacher and the dialogue teacher. Then the student trains (resuming from OUT/checkpoints after a kill),
is saved to OUT/adapter or OUT/model, evaluated on `eval_split` with the evaluation harness (OUT/eval_<split>/); a
table of the metrics next to the Popularity baseline, a few generated validation turns, the time of each stage and
the commands to chat with and serve the model are printed, the table and turns also written to OUT/summary.md.
On the synthetic default the student starts from the dialogue teacher's weights (base_model = dialogue_teacher; the
full fine-tuning counterpart of `init_adapter`).
"""

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from accelerate import PartialState

from eval.report import format_example_turns
from eval.run import EvalConfig, JsonlResume, evaluate
from gencrs.cli import Stages, run_recipe
from gencrs.config import load_config
from gencrs.data import build_examples, load_dataset
from gencrs.errors import GencrsError
from gencrs.io import atomic_write_text
from gencrs.semantic_ids import SemanticIdConfig, build_semantic_ids
from gencrs.teachers.rec_train import RecTeacherConfig, train_rec_teacher
from gencrs.tiny_base import TinyBaseConfig, build_tiny_base
from gencrs.training.sft import SFTRunConfig, final_model_dir, train_sft
from gencrs.training.student import StudentRunConfig, conkd_args, train_student

log = logging.getLogger("sft_conkd")

TABLE_ROWS = [("recall@1", None), ("recall@10", None), ("recall@50", None), ("ndcg@10", None), ("mrr@10", None),
              ("ReR@1", "generation"), ("PrR@1", "generation"), ("F1@1", "generation"),
              ("recommendation_turn_ratio", "generation"), ("mismatch_rate", "generation"), ("bleu2", "generation"),
              ("distinct2", "generation"), ("perplexity", "generation"), ("success_rate", None),
              ("reward_per_dialogue_length", None)]


@dataclass
class SFTConKDRecipeConfig(StudentRunConfig):
    # the synthetic defaults, the 10-minute demo (recipes/configs/sft_conkd_synthetic_tiny.yaml writes them out;
    # sft_conkd_synthetic_large.yaml is the slower, stronger run)
    base_model: str = "runs/dialogue_teacher_synthetic/model"  # full fine-tuning starts from the dialogue teacher
    finetune: str = "full"
    max_length: int = 384
    batch_size: int = 16
    epochs: float = 1.0
    lr: float = 1e-3
    group_by_length: bool = True
    build_missing: bool = True  # build absent CPU-scale artifacts (tiny base, semantic IDs, teachers) first
    tiny_base_config: str = "recipes/configs/tiny_base_synthetic.yaml"  # used when the tiny base is absent
    sid_levels: int = 3  # semantic IDs built here: levels x codes per level
    sid_codes_per_level: int = 16
    rec_teacher_config: str = "recipes/configs/rec_teacher_synthetic.yaml"  # used when rec_teacher is absent
    dialogue_teacher_config: str = "recipes/configs/dialogue_teacher_synthetic.yaml"  # used when dialogue_teacher is absent
    dialogue_teacher_base: str | None = None  # the teacher's base when the student starts from it (default: its config's)
    eval_split: str = "valid"  # tune on valid; run `python -m eval run ... split=test` once at the end
    eval_protocol: str = "recommender"
    eval_generate: bool = True  # also generate every turn: ReR@1, BLEU-2, Distinct-2, perplexity
    eval_limit: int | None = None


def starts_from_teacher(cfg: SFTConKDRecipeConfig) -> bool:
    return Path(cfg.base_model) == Path(cfg.dialogue_teacher)


def data_overrides(cfg: SFTConKDRecipeConfig) -> list[str]:
    """This run's dataset, for the configs of the stages built here."""
    return [f"dataset={cfg.dataset}"] + ([f"data_dir={cfg.data_dir}"] if cfg.data_dir else [])


def dialogue_teacher_run(cfg: SFTConKDRecipeConfig) -> SFTRunConfig:
    """The dialogue teacher's run: its config, on this run's dataset and semantic IDs, over this run's base unless
    the student starts from the teacher (then the teacher's config names the base)."""
    overrides = [*data_overrides(cfg), f"semantic_ids={cfg.semantic_ids}", f"out={Path(cfg.dialogue_teacher).parent}"]
    if not starts_from_teacher(cfg):
        overrides.append(f"base_model={cfg.base_model}")
    elif cfg.dialogue_teacher_base:
        overrides.append(f"base_model={cfg.dialogue_teacher_base}")
    dt = load_config(SFTRunConfig, ["--config", cfg.dialogue_teacher_config, *overrides])
    if final_model_dir(dt) != Path(cfg.dialogue_teacher):
        raise GencrsError(f"{cfg.dialogue_teacher_config} writes {final_model_dir(dt)}, not dialogue_teacher "
                          f"{cfg.dialogue_teacher}")
    return dt


def build_missing(cfg: SFTConKDRecipeConfig, stage: Stages) -> None:
    distills = conkd_args(cfg).distills
    needs_teacher = distills or starts_from_teacher(cfg)
    dt = dialogue_teacher_run(cfg) if needs_teacher and not Path(cfg.dialogue_teacher).is_dir() else None
    base = dt.base_model if dt else cfg.base_model
    if not Path(base).exists() and base.startswith("runs/"):
        tiny = load_config(TinyBaseConfig, ["--config", cfg.tiny_base_config, *data_overrides(cfg), f"out={base}"])
        with stage(f"tiny base {base}"):
            build_tiny_base(tiny)
    if not Path(cfg.semantic_ids).is_dir():
        with stage(f"semantic IDs {cfg.semantic_ids}"):
            build_semantic_ids(SemanticIdConfig(dataset=cfg.dataset, data_dir=cfg.data_dir, out=cfg.semantic_ids,
                                                levels=cfg.sid_levels, codes_per_level=cfg.sid_codes_per_level))
    if distills and not Path(cfg.rec_teacher).is_dir():
        if Path(cfg.rec_teacher).name != "teacher":
            raise GencrsError(f"rec_teacher {cfg.rec_teacher} is absent; a teacher built here lives in <out>/teacher")
        with stage(f"recommendation teacher {cfg.rec_teacher}"):
            train_rec_teacher(load_config(RecTeacherConfig, ["--config", cfg.rec_teacher_config,
                                                             *data_overrides(cfg), f"out={Path(cfg.rec_teacher).parent}"]))
    if dt:
        with stage(f"dialogue teacher {cfg.dialogue_teacher}"):
            train_sft(dt)


def evaluate_student(cfg: SFTConKDRecipeConfig, model_dir: str) -> tuple[dict, dict]:
    out = Path(cfg.out)
    common = dict(dataset=cfg.dataset, data_dir=cfg.data_dir, split=cfg.eval_split, protocol=cfg.eval_protocol,
                  limit=cfg.eval_limit)
    student = evaluate(EvalConfig(model=model_dir, generate=cfg.eval_generate, out=str(out / f"eval_{cfg.eval_split}"),
                                  **common))
    popularity = evaluate(EvalConfig(model="baseline:popularity", out=str(out / f"eval_{cfg.eval_split}_popularity"),
                                     **common))
    return student, popularity


def summary_table(cfg: SFTConKDRecipeConfig, student: dict, popularity: dict, train: dict) -> str:
    def value(result, key, section):
        v = (result.get(section) or {}).get(key) if section else result.get(key)
        return "-" if v is None else f"{v:.4f}"
    scored = f"{student.get('instances')} instances"
    scored += f" from the first {cfg.eval_limit} contexts" if cfg.eval_limit else ""
    lines = [f"ConKD student ({cfg.dataset}, {cfg.eval_split} split, {cfg.eval_protocol} protocol, {scored}, "
             f"gamma={cfg.gamma}, gate={cfg.gate}, eta={cfg.eta}, seed={cfg.seed}; {train['steps']} steps)", "",
             "| metric | popularity | student |", "|---|---|---|"]
    rows = [(key, value(popularity, key, section), value(student, key, section)) for key, section in TABLE_ROWS]
    lines += [f"| {key} | {a} | {b} |" for key, a, b in rows if (a, b) != ("-", "-")]  # not measured on this run
    return "\n".join(lines) + "\n"


def example_turns(cfg: SFTConKDRecipeConfig, n: int = 3) -> str:
    if not cfg.eval_generate:
        return ""
    generations = JsonlResume(Path(cfg.out) / f"eval_{cfg.eval_split}" / "generations.jsonl").rows
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    return format_example_turns(dataset, build_examples(dataset, cfg.eval_split), generations, n)


def next_commands(cfg: SFTConKDRecipeConfig, model_dir: str) -> str:
    export = Path("runs/export") / Path(cfg.out).name
    return "\n".join([
        "Talk to it (each turn: intent, the recommended catalog items with their ids, the response):",
        f"  .venv/bin/gencrs chat model={model_dir}",
        "Serve it behind vLLM's OpenAI-compatible API, constrained to the catalog:",
        f"  .venv/bin/python recipes/export.py model={model_dir} out={export}",
        f"  .venv/bin/gencrs serve model={export} port=8000",
        f"  .venv/bin/gencrs chat model={export} url=http://127.0.0.1:8000/v1",
    ]) + "\n"


def main(cfg: SFTConKDRecipeConfig) -> None:
    """Prints the table, a few generated validation turns, the commands to chat with and serve the model, and the
    stages' times; the numbers are also in OUT/summary.md and OUT/eval_<split>/metrics.json."""
    state = PartialState()
    stage = Stages(log)
    if cfg.build_missing:
        with state.main_process_first():  # the main process builds; the others then find everything in place
            if state.is_main_process:
                build_missing(cfg, stage)
    with stage(f"ConKD student {cfg.out}"):
        train = train_student(cfg)
    if not state.is_main_process:
        return
    with stage(f"evaluation on {cfg.eval_split}"):
        student, popularity = evaluate_student(cfg, train["model"])
    table = summary_table(cfg, student, popularity, train)
    examples = example_turns(cfg)
    atomic_write_text(Path(cfg.out) / "summary.md", table + (f"\n```\n{examples}\n```\n" if examples else ""))
    print(f"\n{table}")
    if examples:
        print(f"Validation turns (context, the model's turn, the gold items):\n{examples}\n")
    print(f"Time per stage:\n{stage.table()}")
    print(next_commands(cfg, train["model"]))


if __name__ == "__main__":
    sys.exit(run_recipe("sft_conkd", SFTConKDRecipeConfig, main))
