"""The project's top-level files agree with each other and with the code: the `gpu` extra, the import contracts, the
Makefile's chains."""

import os
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_extra_installs_what_the_gpu_configs_use():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    gpu = {requirement.split("=")[0].split(">")[0].split("<")[0].strip() for requirement in extras["gpu"]}
    assert "vllm" in gpu  # the CUDA build, for `gencrs serve` on a GPU
    for config in REPO.glob("accelerate_config*.yaml"):
        settings = yaml.safe_load(config.read_text())
        if settings["distributed_type"] == "DEEPSPEED":
            assert "deepspeed" in gpu, f"{config.name} uses DeepSpeed, which the gpu extra does not install"
        assert settings.get("use_cpu") is False and settings["mixed_precision"] == "bf16", config.name


def test_imports_go_one_way():
    """The contracts in pyproject.toml ([tool.importlinter]): eval on gencrs on tokenizer_ext, and inside gencrs one
    direction along the data flow. Function-level imports count too. (A child process: import-linter reconfigures
    logging, which would silence later tests' log capture.)"""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_make_trains_the_fold_teachers_a_student_config_names():
    """`make inspired` reads the student config's rec_teacher_folds: the student waits for each fold teacher, and the
    Nth is trained without fold N-1 of their number, over its own fold's context encoder."""
    student = yaml.safe_load((REPO / "recipes/configs/sft_conkd_inspired_tiny.yaml").read_text())
    runs = [str(Path(teacher).parent) for teacher in student["rec_teacher_folds"]]
    assert len(runs) >= 2

    def make(*args: str) -> str:
        # under `make test` the child make would print its directory and inherit the parent's flags
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        result = subprocess.run(["make", "--dry-run", "--no-print-directory", *args], cwd=REPO, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    rule = next(line for line in make("--print-data-base", "inspired").splitlines()
                if line.startswith(f"{student['out']}/summary.md:"))
    assert all(f"{run}/summary.json" in rule.split() for run in runs), rule
    for fold, run in enumerate(runs):
        commands = make("--always-make", f"{run}/summary.json").splitlines()
        encoder, teacher = commands[-2], commands[-1]
        holdout = f"holdout_fold={fold} folds={len(runs)}"
        assert "train_context_encoder.py" in encoder and holdout in encoder, encoder
        assert "train_rec_teacher.py" in teacher and holdout in teacher and f"out={run}" in teacher, teacher
        assert teacher.split("context_encoder=")[1].split()[0] == encoder.split("out=")[1].split()[0] + "/encoder"
