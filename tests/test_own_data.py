"""The README's "Your own data" commands on the hand-made examples/bookshop directory: stats, the main job with the
own-data config (every part under out=), export (about 3 minutes on 2 cores; serving the export is what the serving
tests check on another model)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_own_data_commands_run_as_written(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    bookshop, configs = REPO / "examples" / "bookshop", REPO / "recipes" / "configs"

    def run(*args):
        result = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=1200)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    assert "dataset bookshop: 40 items" in run("-m", "gencrs", "data", "stats", f"dataset={bookshop}")
    out = run(str(REPO / "recipes" / "sft_conkd.py"), "--config", str(configs / "sft_conkd_own_tiny.yaml"),
              f"dataset={bookshop}", "out=runs/bookshop", f"tiny_base_config={configs / 'tiny_base_synthetic.yaml'}",
              f"rec_teacher_config={configs / 'rec_teacher_own.yaml'}",
              f"dialogue_teacher_config={configs / 'dialogue_teacher_own.yaml'}")
    for part in ("tiny_base", "semantic_ids", "rec_teacher/teacher", "dialogue_teacher/model", "model"):
        assert (tmp_path / "runs" / "bookshop" / part).is_dir(), part
    assert "| recall@10 |" in out and out.count("--- v0") == 3
    run(str(REPO / "recipes" / "export.py"), "model=runs/bookshop/model", "out=runs/export/bookshop")
    assert (tmp_path / "runs" / "export" / "bookshop" / "catalog.json").is_file()
