"""What the teacher-quality tests measure: Recall@10 on the synthetic test split, recommender protocol."""

import pytest

from gencrs.data.protocols import build_instances, contexts_of
from gencrs.metrics import ranking_metrics


@pytest.fixture(scope="session")
def recall_at_10():
    """recall_at_10(recommender, dataset, batch_size=None): ranks the test contexts (all at once, or batch_size at a
    time for a generative model) and returns Recall@10."""

    def recall10(recommender, dataset, batch_size: int | None = None) -> float:
        instances = build_instances(dataset, "test", "recommender")
        contexts = contexts_of(instances)
        step = batch_size or len(contexts)
        ranked = {}
        for start in range(0, len(contexts), step):
            batch = contexts[start:start + step]
            ranked.update(zip((c.key for c in batch), recommender.rank(batch, 10)))
        return ranking_metrics([ranked[i.context.key] for i in instances], [i.label for i in instances],
                               ks=(10,))["recall@10"]

    return recall10
