"""The project's top-level files agree with each other and with the code: the `gpu` extra, the import contracts."""

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
