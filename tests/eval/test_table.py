"""`python -m eval table` on INSPIRED (valid; a graph-only rec teacher of 2 epochs, seconds to train): a seeded row's runs are trained by the row's own recipe command, every
run is evaluated under each protocol, the cells are the mean and sample std of the runs' metrics, the paired tests pair
seed by seed, a table with `train=false` shows what exists (`0 of 2` runs) and trains nothing, and a second call
trains and evaluates nothing again."""

import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from eval.table import Comparison, Row, TableConfig, build_table
from gencrs.errors import GencrsError

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path, rows, data_dir=None, **kw) -> TableConfig:
    return TableConfig(dataset="inspired", data_dir=data_dir, split="valid", protocols=["recommender", "unicrs"],
                       seeds=[0, 1], rows=rows, eval_root=str(tmp_path / "eval"), out=str(tmp_path / "table.md"), **kw)


def test_a_table_trains_what_is_missing_evaluates_once_and_summarizes_over_seeds(tmp_path, shared_data):
    teacher = Row(name="Rec teacher", run=str(tmp_path / "teacher"), artifact="teacher", seeded=True,
                  train=[str(REPO / "recipes" / "train_rec_teacher.py"), "--config",
                         str(REPO / "recipes" / "configs" / "rec_teacher_inspired.yaml"), "epochs=2", "use_text=false",
                         f"data_dir={shared_data}"], train_data="INSPIRED train")
    rows = [Row(name="Popularity", model="baseline:popularity"), teacher]
    cfg = config(tmp_path, rows, str(shared_data), compare=[Comparison(a="Rec teacher", b="Popularity")])
    build_table(replace(cfg, train=False))  # what exists: the baseline only
    assert not (tmp_path / "teacher").exists()
    assert "| Rec teacher | 0 of 2 | INSPIRED train | - | - | - |" in Path(cfg.out).read_text()
    build_table(cfg)  # two teachers of 2 epochs, six evaluations

    assert (tmp_path / "teacher" / "teacher").is_dir() and (tmp_path / "teacher_seed1" / "teacher").is_dir()
    for run, seed in (("teacher", 0), ("teacher_seed1", 1)):  # the row's command with seed= and out= added
        assert json.loads((tmp_path / run / "teacher" / "teacher.json").read_text())["config"]["seed"] == seed
    runs = [tmp_path / "eval" / f"{name}_valid_recommender" for name in ("teacher", "teacher_seed1")]
    recall = [json.loads((run / "metrics.json").read_text())["recall@10"] for run in runs]
    table = Path(cfg.out).read_text()
    teacher_line = next(line for line in table.splitlines() if line.startswith("| Rec teacher | 2 | INSPIRED train"))
    assert f"{statistics.fmean(recall):.4f} ± {statistics.stdev(recall):.4f}" in teacher_line
    popularity = json.loads((tmp_path / "eval" / "popularity_inspired_valid_unicrs" / "metrics.json").read_text())
    assert f"| Popularity | 1 |  | {popularity['recall@1']:.4f} |" in table
    tests = json.loads(Path(cfg.out).with_suffix(".json").read_text())["compare"]
    assert [Path(t["a"]).name for t in tests] == ["teacher_valid_recommender", "teacher_seed1_valid_recommender"]

    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.name in ("metrics.json", "model.pt")}
    build_table(cfg)  # nothing is trained or evaluated again
    assert {p: p.stat().st_mtime_ns for p in written} == written


def test_bad_rows_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(GencrsError, match="no row named 'SFT'"):
        build_table(config(tmp_path, [Row(name="Popularity", model="baseline:popularity")],
                           compare=[Comparison(a="Popularity", b="SFT")]))
    with pytest.raises(GencrsError, match="row 'Student': give model"):
        build_table(config(tmp_path, [Row(name="Student")]))
    with pytest.raises(GencrsError, match=r"row 'Student': .*missing/model does not exist and the row has no train"):
        build_table(config(tmp_path, [Row(name="Student", run=str(tmp_path / "missing"))]))
    with pytest.raises(GencrsError, match="seeded rows on the synthetic dataset"):
        build_table(TableConfig(rows=[Row(name="Student", run=str(tmp_path / "missing"), seeded=True)]))
    assert not (tmp_path / "eval").exists()
