"""The dialogue teacher on the synthetic default, trained with its recipe config (recipes/configs/
dialogue_teacher_synthetic.yaml) on a tiny base built as the main job builds it, far exceeds popularity; the same
extended base untrained does not reach the threshold. About 6 minutes on 2 CPU cores: marked slow."""

from pathlib import Path

import pytest

from eval.generative import GenerativeRecommender
from eval.recommenders import Popularity
from gencrs.config import load_config

CONFIGS = Path(__file__).resolve().parents[3] / "recipes" / "configs"
CONFIG = CONFIGS / "dialogue_teacher_synthetic.yaml"


@pytest.mark.slow
def test_trained_dialogue_teacher_far_exceeds_popularity_and_untrained_does_not(synthetic, tmp_path, embedding_cache,
                                                                            recall_at_10):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs.model import ensure_extended
    from gencrs.semantic_ids import SemanticIdConfig, build_semantic_ids
    from gencrs.tiny_base import TinyBaseConfig, build_tiny_base
    from gencrs.training.sft import SFTRunConfig, train_sft
    from tokenizer_ext import CodeBook

    # the main job's tiny base, from its config
    base = build_tiny_base(load_config(TinyBaseConfig, ["--config", str(CONFIGS / "tiny_base_synthetic.yaml"),
                                                        f"out={tmp_path / 'base'}"]))
    build_semantic_ids(SemanticIdConfig(dataset="synthetic", out=str(tmp_path / "codes"), levels=3, codes_per_level=16,
                                        cache_dir=str(embedding_cache)), synthetic)
    cfg = load_config(SFTRunConfig, ["--config", str(CONFIG), f"base_model={base}",
                                              f"semantic_ids={tmp_path / 'codes'}", f"out={tmp_path / 'dt'}"])
    train_sft(cfg)
    threshold = max(2.5 * recall_at_10(Popularity(synthetic), synthetic), 0.3)
    assert recall_at_10(GenerativeRecommender.load(str(tmp_path / "dt" / "model")), synthetic, 16) > threshold

    codebook = CodeBook.load(tmp_path / "codes")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(base), AutoTokenizer.from_pretrained(base)
    titles = {i: synthetic.title(i) for i in synthetic.catalog}
    ensure_extended(model, tokenizer, codebook, titles)
    assert recall_at_10(GenerativeRecommender(model, tokenizer, codebook, titles), synthetic, 16) < threshold
