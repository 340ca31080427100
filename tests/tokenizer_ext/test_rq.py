import numpy as np
import pytest

from tokenizer_ext.errors import SemanticIdError
from tokenizer_ext.rq import residual_kmeans


def points(n=400, dim=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_deterministic_for_a_seed():
    x = points()
    a, b = residual_kmeans(x, 3, 8, seed=1), residual_kmeans(x, 3, 8, seed=1)
    assert np.array_equal(a.codes, b.codes) and np.array_equal(a.centroids, b.centroids)


def test_duplicates_are_resolved_to_unique_codes_at_the_last_level():
    x = points(200)
    x[100:140] = x[0]  # 41 identical items: they must collide before resolution
    q = residual_kmeans(x, 2, 64, seed=0)
    assert q.stats["collisions_before"] >= 40
    assert q.stats["collisions_after"] == 0 and len({tuple(c) for c in q.codes}) == 200
    # resolution moves only the last level: the 41 copies keep their shared first code
    assert len(set(q.codes[[0, *range(100, 140)], 0])) == 1


def test_full_prefix_moves_items_up_to_a_free_prefix():
    # 16 items in two tight groups of 8, 2 levels x 4 codes: a prefix holds 4 items, so items must change prefix
    x = np.repeat(points(2), 8, axis=0) + points(16) * 1e-3
    q = residual_kmeans(x, 2, 4, seed=0)
    assert len({tuple(c) for c in q.codes}) == 16 and q.stats["collisions_after"] == 0


def test_catalog_too_large_for_levels_and_codes():
    with pytest.raises(SemanticIdError, match=r"does not fit 2 levels x 8 codes \(64 code tuples\)"):
        residual_kmeans(points(100), 2, 8)
    with pytest.raises(SemanticIdError, match="more than the 10 items"):
        residual_kmeans(points(10), 2, 16)


def test_stats_report_utilization_and_error():
    q = residual_kmeans(points(), 3, 8, seed=0)
    assert len(q.stats["utilization_per_level"]) == 3 and all(0 < u <= 1 for u in q.stats["utilization_per_level"])
    errors = q.stats["relative_error_per_level_before_resolution"]
    assert errors[0] > errors[1] > errors[2]  # each level explains more of the residual
