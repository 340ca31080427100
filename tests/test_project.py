"""The project's top-level files agree with each other: what the GPU configs need is in the `gpu` extra."""

import tomllib
from pathlib import Path

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
