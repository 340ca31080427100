"""The own-data format (gencrs/data/files.py): round trips through `gencrs data export`, what the format allows, and
the errors on malformed input."""

import importlib.util
import json
from pathlib import Path

import pytest

from gencrs.cli import main as gencrs_main
from gencrs.data import build_examples, load_dataset
from gencrs.data.files import export_dataset, load_files
from gencrs.data.stats import dataset_stats, format_stats
from gencrs.errors import DataError

REPO = Path(__file__).resolve().parents[3]
BOOKSHOP = REPO / "examples" / "bookshop"


def dialogues(dataset):
    return {split: [(d.id, d.turns, d.feedback) for d in ds] for split, ds in dataset.splits.items()}


def assert_same_dataset(a, b):
    assert a.name == b.name and a.notes == b.notes
    assert a.catalog == b.catalog and list(a.catalog) == list(b.catalog)
    assert dialogues(a) == dialogues(b)
    for split in a.splits:
        assert build_examples(a, split) == build_examples(b, split)
    assert format_stats(dataset_stats(a)) == format_stats(dataset_stats(b))


@pytest.mark.parametrize("name", ["synthetic", "redial", "inspired", "inspired_unicrs"])
def test_export_then_load_gives_the_built_in_dataset_back(name, tmp_path, request, capsys):
    """Catalog, dialogues, examples and `gencrs data stats` are those of the built-in loader; the export goes through
    the command line, and the directory is then loaded by the name every stage takes (dataset=DIR)."""
    if name != "synthetic":
        request.getfixturevalue("shared_data")
    assert gencrs_main(["data", "export", f"dataset={name}", f"out={tmp_path / name}"]) == 0
    original, exported = load_dataset(name), load_dataset(str(tmp_path / name))
    assert exported.path == str(tmp_path / name) and original.path is None
    assert_same_dataset(original, exported)
    if name == "redial":  # the seeker's answers travel too (SR and RDL need them)
        assert sum(bool(d.feedback) for d in exported.splits["test"]) == 1331
    capsys.readouterr()
    assert gencrs_main(["data", "stats", f"dataset={name}"]) == 0
    built_in = capsys.readouterr().out
    assert gencrs_main(["data", "stats", f"dataset={tmp_path / name}"]) == 0
    assert capsys.readouterr().out == built_in


def test_mentions_as_spans_or_marks_and_items_without_a_span(tmp_path):
    catalog = [{"id": "a", "title": "Alpha", "year": 2001, "brand": "Acme", "tags": ["x", "y"]}, {"id": "b", "title": "Beta"}]
    marked = {"id": "d1", "turns": [{"role": "user", "text": "I liked [[item:a]]."},
                                    {"role": "assistant", "text": "Try [[item:b]]."}]}
    spans = {"id": "d1", "turns": [{"role": "user", "text": "I liked Alpha.", "mentions": [{"item": "a", "start": 8, "end": 13}]},
                                   {"role": "assistant", "text": "Try Beta.", "mentions": [{"item": "b", "start": 4, "end": 8}]}]}
    unplaced = {"id": "d1", "turns": [{"role": "user", "text": "I liked [[item:a]]."},
                                      {"role": "assistant", "text": "Try the other one.", "items": ["b"]}]}
    loaded = []
    for n, record in enumerate([marked, spans, unplaced]):
        write_dir(tmp_path / str(n), catalog, {"train": [record], "test": [record | {"id": "d2"}]})
        loaded.append(load_files(tmp_path / str(n)))
    assert loaded[0].splits["train"][0].turns == loaded[1].splits["train"][0].turns
    assert loaded[2].splits["train"][0].turns[1].items == ["b"] and "[[item" not in loaded[2].splits["train"][0].turns[1].text
    item = loaded[0].catalog["a"]
    assert item.attributes == {"brand": ["Acme"], "tags": ["x", "y"]} and "Brand: Acme" in item.text
    # no valid.jsonl: carved from train with the fixed seed, and said in the notes
    assert "valid" in loaded[0].splits and any("carved from train" in n for n in loaded[0].notes)
    assert loaded[0].name == "0"


def test_consecutive_turns_of_one_speaker_are_one_turn(tmp_path):
    record = {"turns": [{"role": "user", "text": "Hi."}, {"role": "user", "text": "Something like [[item:a]]?"},
                        {"role": "assistant", "text": "Sure."}]}
    write_dir(tmp_path, [{"id": "a", "title": "Alpha"}], {"train": [record], "valid": [], "test": []})
    (dialogue,) = load_files(tmp_path).splits["train"]
    assert dialogue.id == "train:1" and [t.role for t in dialogue.turns] == ["user", "assistant"]
    assert dialogue.turns[0].text == "Hi. Something like [[item:a]]?" and dialogue.turns[0].items == ["a"]


def test_a_dataset_directory_by_path_or_by_name_under_the_data_dir(tmp_path):
    write_dir(tmp_path / "shop", [{"id": "a", "title": "Alpha"}],
              {"train": [{"turns": [{"role": "user", "text": "[[item:a]]?"}, {"role": "assistant", "text": "Yes."}]}]})
    by_path = load_dataset(str(tmp_path / "shop"))
    by_name = load_dataset("shop", data_dir=tmp_path)
    assert by_path.name == by_name.name == "shop" and dialogues(by_path) == dialogues(by_name)
    with pytest.raises(ValueError, match="not a directory with catalog.jsonl"):
        load_dataset("nonexistent_shop", data_dir=tmp_path)


def test_the_graph_of_own_data_has_its_kg_file_and_other_metadata(tmp_path):
    from gencrs.teachers.kg import build_kg

    kg = build_kg(load_files(BOOKSHOP), data_dir=REPO)
    assert any("kg.jsonl (25 triples)" in s for s in kg.sources)
    assert {"kg:award", "kg:sequel_of", "authors"} <= set(kg.relations)
    # entities of kg.jsonl and values of other catalog fields link from context text
    assert kg.names["hugo award"] in kg.link("any hugo award winners?", [])
    assert kg.names["stephen king"] in kg.link("something by Stephen King", [])
    # an entity linked to one node only is pruned like a DBpedia leaf ("Earthsea" names one book)
    assert "earthsea" not in kg.names


def test_every_stage_reads_the_same_items_from_a_directory(tmp_path):
    from gencrs.semantic_ids import item_texts
    from gencrs.tiny_base import corpus_texts

    export_dataset(load_dataset("synthetic"), tmp_path / "synthetic")
    original, exported = load_dataset("synthetic"), load_dataset(str(tmp_path / "synthetic"))
    assert item_texts(original) == item_texts(exported)
    assert corpus_texts(original) == corpus_texts(exported)


def test_the_main_job_on_an_exported_directory_gives_the_built_in_numbers(student_values, tmp_path):
    """recipes/sft_conkd.py (a short run, the fixtures' teachers) on `dataset=DIR` of the exported synthetic set and
    on `dataset=synthetic`, same seed: the same evaluation numbers, student and Popularity."""
    spec = importlib.util.spec_from_file_location("sft_conkd", REPO / "recipes" / "sft_conkd.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    export_dataset(load_dataset("synthetic"), tmp_path / "exported")
    metrics = {}
    for name, dataset in (("built_in", "synthetic"), ("directory", str(tmp_path / "exported"))):
        values = student_values(tmp_path / name, dataset=dataset, build_missing=False, eval_limit=24,
                                eval_generate=True, max_steps=3, teacher_cache=str(tmp_path / f"cache_{name}"))
        recipe.main(recipe.SFTConKDRecipeConfig(**values))
        metrics[name] = [json.loads((tmp_path / name / f"eval_valid{suffix}" / "metrics.json").read_text())
                         for suffix in ("", "_popularity")]
    for built_in, directory in zip(metrics["built_in"], metrics["directory"]):
        def numbers(result):
            return {k: v for k, v in result.items() if k not in ("seconds", "model")}  # the model's path differs
        assert numbers(built_in) == numbers(directory)
        assert built_in["contexts"] == 24 and "recall@10" in built_in
    assert "generation" in metrics["directory"][0]


# --- malformed input: each case names file, line and field; --lenient counts and reports the skip ---

GOOD_ITEM = {"id": "a", "title": "Alpha"}
GOOD_DIALOGUE = {"id": "d1", "turns": [{"role": "user", "text": "Hi"}, {"role": "assistant", "text": "[[item:a]]"}]}
BAD_CASES = {
    # case: (file, records of that file, the line at fault, what the message names)
    "unknown item in text": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "I liked [[item:zz]]"}]}], 2,
                             "turns[0].text: item 'zz' is not in the catalog"),
    "unknown item in items": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "Hi", "items": ["a", "zz"]}]}], 2,
                              "turns[0].items[1]: item 'zz' is not in the catalog"),
    "unknown item in a span": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "Hi", "mentions": [
        {"item": "zz", "start": 0, "end": 2}]}]}], 2, "turns[0].mentions[0].item: item 'zz' is not in the catalog"),
    "span outside the text": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "Hi", "mentions": [
        {"item": "a", "start": 0, "end": 9}]}]}], 2, "turns[0].mentions[0]: start 0 / end 9"),
    "turn without role": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "Hi"}, {"text": "Hello"}]}], 2,
                          "turns[1].role: missing"),
    "turn with a bad role": ("train", [{"id": "d2", "turns": [{"role": "seeker", "text": "Hi"}]}], 2,
                             'turns[0].role: "seeker" is not one of user, assistant'),
    "turn without text": ("train", [{"id": "d2", "turns": [{"role": "user"}]}], 2, "turns[0].text: missing"),
    "empty text": ("train", [{"id": "d2", "turns": [{"role": "user", "text": "  "}]}], 2,
                   "turns[0].text: expected a non-empty string"),
    "no turns": ("train", [{"id": "d2"}], 2, "turns: missing"),
    "duplicate dialogue id": ("test", [GOOD_DIALOGUE], 1, "id: duplicate dialogue id 'd1' (first at"),
    "invalid JSON": ("train", ['{"id": "d2", "turns": ['], 2, "invalid JSON"),
    "duplicate item id": ("catalog", [GOOD_ITEM], 2, "id: duplicate item id 'a'"),
    "item without title": ("catalog", [{"id": "b"}], 2, "title: missing"),
    "bad year": ("catalog", [{"id": "b", "title": "Beta", "year": "1999"}], 2, 'year: expected an integer or null, got "1999"'),
    "bad metadata field": ("catalog", [{"id": "b", "title": "Beta", "brand": {"name": "Acme"}}], 2,
                           "brand: expected a string or a list of strings"),
    "kg triple without relation": ("kg", [{"head": "a", "tail": "Acme"}], 1, "relation: missing"),
}


def write_dir(root: Path, catalog: list, splits: dict, extra: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, records in {"catalog": catalog, **splits, **(extra or {})}.items():
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        (root / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines))
    return root


def bad_dir(root: Path, case: str) -> tuple[Path, Path, int, str]:
    file, records, line, message = BAD_CASES[case]
    base = {"catalog": [GOOD_ITEM], "train": [GOOD_DIALOGUE], "test": [], "kg": []}
    base[file] = base[file] + records
    write_dir(root, base.pop("catalog"), base)
    return root, root / f"{file}.jsonl", line, message


@pytest.mark.parametrize("case", BAD_CASES)
def test_malformed_input_names_file_line_and_field(tmp_path, case):
    root, path, line, message = bad_dir(tmp_path, case)
    with pytest.raises(DataError) as error:
        load_files(root)
    assert str(error.value).startswith(f"{path}:{line}: ") and message in str(error.value)


@pytest.mark.parametrize("case", ["unknown item in text", "turn without role", "duplicate item id", "bad year"])
def test_lenient_export_skips_counts_and_reports(tmp_path, case, capsys):
    """`gencrs data export --lenient` writes a clean directory without the bad record, and says what it skipped."""
    root, path, line, message = bad_dir(tmp_path / "bad", case)
    assert gencrs_main(["data", "stats", f"dataset={root}"]) == 1
    assert f"{path}:{line}: " in capsys.readouterr().err
    assert gencrs_main(["data", "export", f"dataset={root}", f"out={tmp_path / 'clean'}", "--lenient"]) == 0
    clean = load_files(tmp_path / "clean")
    assert any(n.startswith("skipped 1 malformed record(s): ") and f"{path}:{line}: {message}" in n for n in clean.notes)
    assert len(clean.catalog) == 1 and [d.id for d in clean.splits["train"] + clean.splits["valid"]] == ["d1"]


def test_an_empty_catalog_and_a_bad_split_name_are_errors(tmp_path):
    write_dir(tmp_path / "empty", [], {"train": [GOOD_DIALOGUE]})
    with pytest.raises(DataError, match=r"catalog.jsonl: the catalog is empty"):
        load_files(tmp_path / "empty", strict=False)  # nothing to skip to: an error in lenient mode too
    write_dir(tmp_path / "dev", [GOOD_ITEM], {"train": [GOOD_DIALOGUE], "dev": [GOOD_DIALOGUE | {"id": "d2"}]})
    with pytest.raises(DataError, match=r"dev.jsonl: split name 'dev' is not one of train, valid, test"):
        load_files(tmp_path / "dev")
    lenient = load_files(tmp_path / "dev", strict=False)
    assert "dev" not in lenient.splits and any("skipped 1 malformed record(s)" in n for n in lenient.notes)
    with pytest.raises(DataError, match="no train.jsonl"):
        load_files(write_dir(tmp_path / "no_train", [GOOD_ITEM], {"test": [GOOD_DIALOGUE]}))
