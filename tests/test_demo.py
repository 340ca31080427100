"""`make demo`'s job end to end: the main recipe on its defaults from an empty runs/ (about 10 minutes on 2 cores)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def table_row(stdout: str, metric: str) -> tuple[float, float]:
    match = re.search(rf"^\| {re.escape(metric)} \| ([0-9.]+) \| ([0-9.]+) \|$", stdout, re.MULTILINE)
    assert match, f"no {metric} row in the printed table"
    return float(match.group(1)), float(match.group(2))


@pytest.mark.slow
def test_demo_builds_everything_and_the_student_beats_popularity(tmp_path, shared_data):
    """From an empty runs/ (cwd = tmp_path): every part is built, the student's Recall@1 and Recall@10 on valid are at
    least twice Popularity's and its Recall@50 above it, and the run ends showing generated turns, the stages' times
    and the commands to chat with and serve the model."""
    configs = REPO / "recipes" / "configs"
    env = {**os.environ, "GENCRS_DATA_DIR": str(shared_data), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(REPO / "recipes" / "sft_conkd.py"),
                             f"tiny_base_config={configs / 'tiny_base_synthetic.yaml'}",
                             f"rec_teacher_config={configs / 'rec_teacher_synthetic.yaml'}",
                             f"dialogue_teacher_config={configs / 'dialogue_teacher_synthetic.yaml'}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"valid split, recommender protocol, [1-9][0-9]* instances, gamma=", out), out[:2000]
    for metric, factor in (("recall@1", 2.0), ("recall@10", 2.0)):
        popularity, student = table_row(out, metric)
        assert student >= factor * popularity, (metric, student, popularity)
    popularity, student = table_row(out, "recall@50")
    assert student > popularity
    for part in ("tiny_base_synthetic", "semantic_ids_synthetic", "rec_teacher_synthetic", "dialogue_teacher_synthetic"):
        assert (tmp_path / "runs" / part).is_dir(), part
    assert out.count("--- valid-") == 3 and "gold: " in out
    assert "| total |" in out and "gencrs chat model=runs/student_synthetic/model" in out
    assert "gencrs serve model=runs/export/student_synthetic" in out
