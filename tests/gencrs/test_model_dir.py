"""The model-directory format: written and read by one module, with clear errors for what is not one."""

import json

import pytest

from gencrs import model_dir
from gencrs.errors import GencrsError
from tokenizer_ext import CodeBook

CODEBOOK = CodeBook(2, 4, {"a": (0, 1), "b": (1, 2)})
TITLES = {"a": "Alpha (1990)", "b": "Beta"}


def test_an_adapter_directory_round_trips(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    model_dir.write(tmp_path, CODEBOOK, TITLES, base_model="runs/base")
    found = model_dir.read(tmp_path)
    assert (found.kind, found.base_model, found.titles) == ("adapter", "runs/base", TITLES)
    assert found.codebook.item_codes == CODEBOOK.item_codes


def test_the_context_codes_flag_round_trips_beside_a_base_model_or_alone(tmp_path):
    adapter, full, plain = tmp_path / "adapter", tmp_path / "full", tmp_path / "plain"
    for directory in (adapter, full, plain):
        directory.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    model_dir.write(adapter, CODEBOOK, TITLES, base_model="runs/base", context_codes=True)
    found = model_dir.read(adapter)
    assert (found.base_model, found.context_codes) == ("runs/base", True)
    (full / "config.json").write_text("{}")
    model_dir.write(full, CODEBOOK, TITLES, context_codes=True)
    assert model_dir.read(full).context_codes and model_dir.reads_context_codes(full)
    (plain / "config.json").write_text("{}")
    model_dir.write(plain, CODEBOOK, TITLES)
    assert not model_dir.read(plain).context_codes and not (plain / model_dir.MODEL_META).exists()


def test_an_export_is_servable_and_an_adapter_is_not(tmp_path):
    export, adapter = tmp_path / "export", tmp_path / "adapter"
    for directory in (export, adapter):
        directory.mkdir()
    for name in ("config.json", "tokenizer_config.json"):
        (export / name).write_text("{}")
    model_dir.write(export, CODEBOOK, TITLES, export={"source": "run", "dtype": "float32"})
    assert json.loads((export / model_dir.EXPORT_META).read_text())["dtype"] == "float32"
    assert model_dir.read(export).kind == "full" and model_dir.check_servable(export) == export
    (adapter / "adapter_config.json").write_text("{}")
    model_dir.write(adapter, CODEBOOK, TITLES, base_model="runs/base")
    with pytest.raises(GencrsError, match="export it first"):
        model_dir.check_servable(adapter)


def test_what_is_not_a_model_directory_is_named(tmp_path):
    with pytest.raises(GencrsError, match="is not a model directory"):
        model_dir.read(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GencrsError, match="catalog.json is missing"):
        model_dir.read_titles(tmp_path)
    with pytest.raises(GencrsError, match="missing codes.json, catalog.json, tokenizer_config.json"):
        model_dir.check_servable(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    model_dir.write(tmp_path, CODEBOOK, TITLES)  # an adapter without its base model
    with pytest.raises(GencrsError, match="lacks gencrs_model.json"):
        model_dir.read(tmp_path)
