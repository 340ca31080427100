"""The context encoder on the synthetic world: contrastive fine-tuning on (context, target item text) pairs lifts the
text-retrieval recommender well above the same retriever with the untrained MiniLM weights, and the trained encoder
directory is a recommender that eval loads on its own."""

import json

import numpy as np
import torch

from eval.recommenders import load_recommender
from gencrs.teachers.context_encoder import (
    ContextEncoderConfig,
    ContextRetriever,
    train_context_encoder,
)
from tokenizer_ext.embed import DEFAULT_ENCODER, encoder_path


def test_fine_tuning_lifts_retrieval_above_the_untrained_encoder(tmp_path, synthetic, recall_at_10):
    out = tmp_path / "encoder"
    summary = train_context_encoder(ContextEncoderConfig(out=str(out), epochs=0.25, batch_size=32, lr=2e-4,
                                                         max_seq_length=64))  # 22 steps, about 90 s on 2 cores
    trained = load_recommender(str(out / "encoder"), synthetic)
    assert isinstance(trained, ContextRetriever)
    items = {i: item.text for i, item in synthetic.catalog.items()}
    untrained = ContextRetriever(encoder_path(DEFAULT_ENCODER), list(items), list(items.values()))
    before, after = recall_at_10(untrained, synthetic), recall_at_10(trained, synthetic)
    assert after > before + 0.1, (before, after)
    assert summary["valid_recall@10"] > before
    assert json.loads((out / "encoder" / "context_encoder.json").read_text())["items"] == items
    # loading read the item vectors saved with the encoder, and they are what encoding the item texts gives
    assert (out / "encoder" / "item_vectors.npy").exists()
    torch.testing.assert_close(trained.item_vectors, trained.encode(list(items.values())), atol=1e-5, rtol=1e-4)
    np.save(out / "encoder" / "item_vectors.npy", np.zeros((len(items), 384), dtype=np.float32))
    assert not ContextRetriever.load(out / "encoder").item_vectors.any()  # read, not encoded again
