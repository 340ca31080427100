"""The recommendation teacher on the synthetic default: trained briefly, it far exceeds popularity; untrained, it
does not reach the same threshold."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from eval.recommenders import Popularity
from gencrs.data.protocols import build_instances, contexts_of
from gencrs.data.splits import fold_of
from gencrs.errors import GencrsError
from gencrs.teachers.kg import build_kg
from gencrs.teachers.rec import RecTeacher, RecTeacherModel, load_rec_teacher
from gencrs.teachers.rec_train import RecTeacherConfig, train_rec_teacher

REPO = Path(__file__).resolve().parents[3]


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


def test_comention_fusion_is_chosen_on_valid_and_saved_with_the_teacher(trained, synthetic, tmp_path):
    """The co-mention term is added with the weight that has the best valid Recall@10 (0, no term, among those tried);
    the teacher saves it and its counts, and P(item | context) moves by exactly that term."""
    from gencrs.teachers.comentions import CoMentions
    from gencrs.teachers.rec_train import choose_fusion_weight

    teacher, _, _ = trained
    valid = build_instances(synthetic, "valid", "recommender")
    fusion = choose_fusion_weight(teacher, synthetic, RecTeacherConfig(fusion_weights=[0.5, 2.0]), valid, contexts_of(valid))
    assert set(fusion["tried"]) == {"0.0", "0.5", "2.0"} and teacher.fusion_weight == fusion["chosen"]
    assert fusion["tried"][str(fusion["chosen"])]["recall@10"] == max(m["recall@10"] for m in fusion["tried"].values())
    contexts = [c for c in contexts_of(build_instances(synthetic, "test", "recommender")) if c.items][:4]
    teacher.fusion_weight = 2.0
    teacher.save(tmp_path / "teacher", {"dim": 64, "num_bases": 8, "layers": 1, "dropout": 0.1})
    loaded = RecTeacher.load(tmp_path / "teacher", cache_dir=teacher.cache_dir)
    assert loaded.fusion_weight == 2.0 and loaded.comentions.pairs == CoMentions.count(synthetic).pairs
    fused = loaded.item_probs(contexts).log()
    loaded.fusion_weight = 0.0
    plain = loaded.item_probs(contexts).log()
    shift = fused - plain - 2.0 * loaded.comention_term(contexts)  # equal up to each row's normalizer
    torch.testing.assert_close(shift - shift[:, :1], torch.zeros_like(shift), atol=1e-3, rtol=0)
    assert loaded.comention_term(contexts).abs().sum() > 0


def test_comention_scores_hand_computed():
    from gencrs.data import Dataset, Dialogue, Turn
    from gencrs.teachers.comentions import CoMentions

    def dialogue(*turn_items):
        return Dialogue(id=str(turn_items), turns=[Turn("user", "", list(items)) for items in turn_items])

    train = [dialogue(["a", "b"], ["c", "a"]), dialogue(["a"], ["c"])]  # a dialogue's repeats count once
    comentions = CoMentions.count(Dataset(name="hand", catalog={}, splits={"train": train}))
    assert comentions.pairs["a"] == {"b": 1, "c": 2}
    # context [a, b]: b is the last mention (weight 1), a the one before (1/2)
    assert comentions.scores(["a", "b"]) == {"a": 1.0, "c": 1 + 2 / 2, "b": 1 / 2}


def test_approximate_train_on_a_dataset_without_such_dialogues_is_an_error(tmp_path):
    with pytest.raises(GencrsError, match="approximate_train: dataset synthetic has no approximate train dialogues"):
        train_rec_teacher(RecTeacherConfig(out=str(tmp_path / "rec"), approximate_train=True))
    assert not (tmp_path / "rec").exists()


def test_retrieval_term_is_chosen_on_valid_and_the_encoder_travels_with_the_teacher(trained, synthetic, tmp_path):
    """The context encoder's cosine term gets the weight with the best valid Recall@10; the saved teacher holds a copy
    of the encoder (the original may go) and P(item | context) moves by exactly weight x cosine. The encoder here is
    MiniLM's untrained weights in the encoder-directory layout: the plumbing, not the training, is under test."""
    import json
    import shutil

    from sentence_transformers import SentenceTransformer

    from gencrs.teachers.rec_train import choose_retrieval_weight
    from tokenizer_ext.embed import DEFAULT_ENCODER, encoder_path

    teacher, _, _ = trained
    encoder = tmp_path / "encoder"
    SentenceTransformer(encoder_path(DEFAULT_ENCODER), device="cpu").save(str(encoder))
    (encoder / "context_encoder.json").write_text(json.dumps(
        {"context_turns": 3, "items": {i: item.text for i, item in synthetic.catalog.items()}}))
    valid = build_instances(synthetic, "valid", "recommender")
    cfg = RecTeacherConfig(context_encoder=str(encoder), retrieval_weights=[5.0, 20.0])
    retrieval = choose_retrieval_weight(teacher, cfg, valid, contexts_of(valid))
    assert set(retrieval["tried"]) == {"0.0", "5.0", "20.0"} and teacher.retrieval_weight == retrieval["chosen"]
    assert retrieval["tried"][str(retrieval["chosen"])]["recall@10"] == max(m["recall@10"] for m in retrieval["tried"].values())
    teacher.retrieval_weight, teacher.fusion_weight = 5.0, 0.0
    teacher.save(tmp_path / "teacher", {"dim": 64, "num_bases": 8, "layers": 1, "dropout": 0.1})
    shutil.rmtree(encoder)
    loaded = RecTeacher.load(tmp_path / "teacher", cache_dir=teacher.cache_dir)
    assert loaded.retrieval_weight == 5.0 and loaded.retriever.directory == tmp_path / "teacher" / "context_encoder"
    contexts = contexts_of(build_instances(synthetic, "test", "recommender"))[:4]
    fused = loaded.item_probs(contexts).log()
    loaded.retrieval_weight = 0.0
    shift = fused - loaded.item_probs(contexts).log() - 5.0 * loaded.retriever.similarities(contexts)
    torch.testing.assert_close(shift - shift[:, :1], torch.zeros_like(shift), atol=1e-3, rtol=0)
    teacher.retrieval_weight, teacher.retriever = 0.0, None


def test_cross_fitted_teacher_reads_each_train_context_with_the_teacher_that_left_its_dialogue_out(
        synthetic, embedding_cache, tmp_path):
    directories = []
    for fold in range(2):
        out = tmp_path / f"fold{fold}"
        train_rec_teacher(RecTeacherConfig(out=str(out), epochs=1, holdout_fold=fold, folds=2,
                                           cache_dir=str(embedding_cache)))
        directories.append(str(out / "teacher"))
    teachers = [RecTeacher.load(d) for d in directories]
    crossfit = load_rec_teacher("not read", directories)
    contexts = contexts_of(build_instances(synthetic, "train", "recommender"))[:40]
    twins = [replace(c, key=f"teacher:{c.key}") for c in contexts]  # a student's teacher-labelled twins of them
    folds = [fold_of(c.key.rpartition(":")[0], 2) for c in contexts]
    assert set(folds) == {0, 1}
    assert not torch.allclose(teachers[0].item_probs(contexts), teachers[1].item_probs(contexts), atol=1e-3)
    probs = crossfit.item_probs(contexts + twins)
    for n, (context, fold) in enumerate(zip(contexts, folds)):
        expected = teachers[fold].item_probs([context])[0]
        torch.testing.assert_close(probs[n], expected)
        torch.testing.assert_close(probs[len(contexts) + n], expected)
    with pytest.raises(GencrsError, match="fold order"):
        load_rec_teacher("not read", directories[::-1])


def test_ensemble_averages_its_members_and_loads_wherever_a_teacher_does(synthetic, untrained_rec_teacher, tmp_path):
    from eval.recommenders import load_recommender
    from gencrs.teachers.context_encoder import top_items
    from gencrs.teachers.outputs import cache_fingerprint
    from gencrs.teachers.rec import RecTeacherEnsemble

    members = [untrained_rec_teacher(tmp_path / f"m{n}" / "teacher", seed=n) for n in range(2)]
    written = subprocess.run([sys.executable, str(REPO / "recipes" / "rec_teacher_ensemble.py"),
                              f"members=[{','.join(members)}]", f"out={tmp_path / 'ens'}"],
                             capture_output=True, text=True, timeout=300)
    assert written.returncode == 0, written.stderr
    directory = str(tmp_path / "ens" / "teacher")
    contexts = contexts_of(build_instances(synthetic, "test", "recommender"))[:12]
    member_probs = [RecTeacher.load(m).item_probs(contexts) for m in members]
    assert not torch.allclose(member_probs[0], member_probs[1], atol=1e-3)  # so the mean differs from either
    expected = (member_probs[0] + member_probs[1]) / 2
    for loaded in (load_rec_teacher(directory), load_recommender(directory, synthetic)):
        assert isinstance(loaded, RecTeacherEnsemble)
        torch.testing.assert_close(loaded.item_probs(contexts), expected)
        assert loaded.rank(contexts, 10) == top_items(expected, contexts, loaded.item_ids, 10)

    # a student's default teacher cache is the ensemble's own, and rebuilt when a member changes, not only when the
    # ensemble's own file does
    from gencrs.training.student import StudentRunConfig, teacher_cache_dir
    for rec_teacher, name in ((directory, "teacher_cache_64_ensemble2"), (members[0], "teacher_cache_64")):
        assert teacher_cache_dir(StudentRunConfig(rec_teacher=rec_teacher, dialogue_teacher="dt/model",
                                                  max_length=64)).name == name
    before = cache_fingerprint(members[0], directory, 64, 8, [])
    untrained_rec_teacher(members[1], seed=7)
    assert cache_fingerprint(members[0], directory, 64, 8, []) != before


def test_ensemble_members_must_be_two_trained_teachers_over_one_catalog(synthetic, untrained_rec_teacher, tmp_path):
    from gencrs.teachers.rec import RecTeacherEnsemble

    one = untrained_rec_teacher(tmp_path / "one" / "teacher", seed=0)
    with pytest.raises(GencrsError, match="at least 2"):
        RecTeacherEnsemble.write(tmp_path / "ens", [one])
    with pytest.raises(GencrsError, match=r"absent is not a trained rec teacher"):
        RecTeacherEnsemble.write(tmp_path / "ens", [one, str(tmp_path / "absent")])
    RecTeacherEnsemble.write(tmp_path / "ens", [one, one])
    with pytest.raises(GencrsError, match="ens is not a trained rec teacher"):  # no ensembles of ensembles
        RecTeacherEnsemble.write(tmp_path / "ens2", [one, str(tmp_path / "ens")])
    other = untrained_rec_teacher(tmp_path / "other" / "teacher", seed=1, items=list(synthetic.catalog)[::-1])
    with pytest.raises(GencrsError, match="different catalogs"):
        RecTeacherEnsemble.write(tmp_path / "ens3", [one, other])
    assert not (tmp_path / "ens3").exists()
