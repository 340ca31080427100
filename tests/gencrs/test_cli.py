import json
import subprocess
import sys

import pytest


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gencrs", *args], capture_output=True, text=True, env=env)


def test_stats_synthetic_json():
    result = run("data", "stats", "dataset=synthetic", "json=true")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["items"] == 300
    assert stats["splits"]["train"]["dialogues"] == 1200
    train = stats["splits"]["train"]
    assert sum(train["intent"].values()) == train["examples"] == sum(train["targets_per_turn"].values())


def test_stats_redial_table(shared_data):
    result = run("data", "stats", "dataset=redial", f"data_dir={shared_data}")
    assert result.returncode == 0, result.stderr
    assert "dataset redial: 6924 items" in result.stdout
    assert any(line.split()[:2] == ["test", "1342"] for line in result.stdout.splitlines())


def test_missing_data_is_one_line_and_nonzero(tmp_path):
    result = run("data", "stats", "dataset=inspired", f"data_dir={tmp_path}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and str(tmp_path) in result.stderr and "sweetpeach/Inspired" in result.stderr


def test_examples_command_prints_json_lines():
    result = run("data", "examples", "dataset=synthetic", "n=3")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and {"context", "intent", "targets", "response"} <= lines[0].keys()


def test_recipe_bad_config_is_one_line_and_nonzero():
    from pathlib import Path
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "train_rec_teacher.py"
    result = subprocess.run([sys.executable, str(recipe), "epochs=many"], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.startswith("train_rec_teacher: error: bad config")
    assert result.stderr.count("\n") == 1


def test_unknown_command_lists_the_commands():
    result = run("data", "stat", "dataset=synthetic")
    assert result.returncode == 2 and "unknown command 'data stat'" in result.stderr and "gencrs data stats" in result.stderr


def test_help_lists_a_commands_options():
    result = run("data", "stats", "--help")
    assert result.returncode == 0 and "dataset=synthetic" in result.stdout and "lenient=False" in result.stdout


def test_stages_log_each_stage_and_total(caplog):
    import logging

    from gencrs.cli import Stages
    stage = Stages(logging.getLogger("test_stages"))
    with caplog.at_level(logging.INFO, logger="test_stages"):
        with stage("first"):
            pass
        with pytest.raises(RuntimeError):
            with stage("broken"):
                raise RuntimeError("stops the job")
    assert "stage first: started" in caplog.text and "stage first: done in" in caplog.text
    assert "broken: done" not in caplog.text  # a failed stage is not reported as done
    table = stage.table()
    assert "| first |" in table and "| broken |" not in table and "| total |" in table
