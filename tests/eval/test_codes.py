"""`python -m eval codes` on the synthetic data with a real (untrained) R-GCN rec teacher and two code tables."""

import json
import math
import random

import torch

from eval.codes import CodesConfig, code_information
from tokenizer_ext import CodeBook


def random_table(items, seed, directory):
    rng = random.Random(seed)
    triples = rng.sample([(a, b, c) for a in range(8) for b in range(8) for c in range(8)], len(items))
    directory.mkdir()
    (directory / "codes.json").write_text(json.dumps(CodeBook(3, 8, dict(zip(items, triples))).to_json()))
    return str(directory)


def test_levels_split_the_same_item_information_differently(synthetic, tmp_path):
    from gencrs.teachers.kg import build_kg
    from gencrs.teachers.rec import RecTeacher, RecTeacherModel

    torch.manual_seed(0)
    kg = build_kg(synthetic)
    items = list(synthetic.catalog)
    RecTeacher(RecTeacherModel(kg, items, dim=32, num_bases=4), kg, items, encoder=None).save(
        tmp_path / "teacher", {"dim": 32, "num_bases": 4, "layers": 1, "dropout": 0.1})
    tables = [random_table(items, seed, tmp_path / f"codes{seed}") for seed in (0, 1)]
    out = code_information(CodesConfig(rec_teacher=str(tmp_path / "teacher"), semantic_ids=tables, dataset="synthetic",
                                       split="valid", protocol="recommender"))
    a, b = (out["tables"][t] for t in tables)
    assert out["instances"] > 0
    # the chain rule: summed over levels, each table gives the item-level cross-entropy (the prior's is log N)
    assert all(abs(sum(table["prior_ce"]) - math.log(len(items))) < 1e-3 for table in (a, b))
    assert abs(sum(a["teacher_ce"]) - sum(b["teacher_ce"])) < 1e-3
    assert a["teacher_ce"] != b["teacher_ce"]  # ... but the levels carry different shares of it
    assert all(0 < p <= 1 for table in (a, b) for p in table["teacher_p"] + table["prior_p"])
    assert abs(a["lift"][0] - a["teacher_p"][0] / a["prior_p"][0]) < 0.01
