"""The recommendation teacher on the synthetic default: trained briefly, it far exceeds popularity; untrained, it
does not reach the same threshold."""

import pytest
import torch

from eval.recommenders import Popularity
from gencrs.data.protocols import build_instances, contexts_of
from gencrs.teachers.kg import build_kg
from gencrs.teachers.rec import RecTeacher, RecTeacherModel
from gencrs.teachers.rec_train import RecTeacherConfig, train_rec_teacher


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedding_cache):
    out = tmp_path_factory.mktemp("rec") / "synthetic"
    summary = train_rec_teacher(RecTeacherConfig(out=str(out), epochs=6, cache_dir=str(embedding_cache)))
    return RecTeacher.load(out / "teacher", cache_dir=str(embedding_cache)), summary, out


def test_trained_teacher_far_exceeds_popularity_and_untrained_does_not(trained, synthetic, embedding_cache,
                                                                         recall_at_10):
    teacher, summary, _ = trained
    popularity = recall_at_10(Popularity(synthetic), synthetic)
    threshold = max(3 * popularity, 0.4)
    assert recall_at_10(teacher, synthetic) > threshold
    torch.manual_seed(0)
    untrained = RecTeacher(RecTeacherModel(build_kg(synthetic), list(synthetic.catalog), text_dim=384), build_kg(synthetic),
                           list(synthetic.catalog), teacher.encoder, str(embedding_cache))
    assert recall_at_10(untrained, synthetic) < threshold


def test_probabilities_cover_the_catalog_and_resume_is_a_no_op(trained, synthetic):
    teacher, summary, out = trained
    contexts = contexts_of(build_instances(synthetic, "test", "recommender"))[:5]
    probs = teacher.item_probs(contexts)
    assert probs.shape == (5, len(synthetic.catalog))
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))
    again = train_rec_teacher(RecTeacherConfig(out=str(out), epochs=6, cache_dir=teacher.cache_dir))  # done: trains nothing
    assert again["history"] == summary["history"]
