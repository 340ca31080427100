"""INSPIRED (Hayati et al., EMNLP 2020), in two formats.

- Original TSV (DATA_DIR/inspired/dialog_data/{train,dev,test}.tsv): one utterance per row; movie mentions are the
  [MOVIE_TITLE_n] placeholders of `text_with_placeholder`, resolved through the row's `movie_dict`.
- UniCRS-processed JSONL (DATA_DIR/inspired/unicrs_dbpedia/{train,valid,test}_data_dbpedia.jsonl): one dialogue per
  line, consecutive same-speaker utterances already merged; a turn's movies are in `movie` ("Title (Year)").

Neither marks where a movie is named in `text`, so the title (without year) is searched in the text and marked there;
a movie whose title is not found stays in the turn's items without a span (counted in the dataset notes).
Items are identified by "Title (Year)"; the catalog is every movie mentioned in the loaded splits.
"""

import ast
import csv
import re
from pathlib import Path

from gencrs.data.mentions import mark_mentions
from gencrs.data.paths import require
from gencrs.data.problems import Problems, read_jsonl
from gencrs.data.schema import (
    Dataset,
    Dialogue,
    Item,
    Turn,
    append_turn,
    split_title_year,
)

DOWNLOAD = (
    "Download data/dialog_data/{train,dev,test}.tsv from https://github.com/sweetpeach/Inspired into DATA_DIR/inspired/dialog_data/, "
    "or the UniCRS-processed files (see https://github.com/wxl1999/UniCRS) into DATA_DIR/inspired/unicrs_dbpedia/."
)
ROLES = {"SEEKER": "user", "RECOMMENDER": "assistant"}
TSV_SPLITS = {"train": "train.tsv", "valid": "dev.tsv", "test": "test.tsv"}
UNICRS_SPLITS = {"train": "train_data_dbpedia.jsonl", "valid": "valid_data_dbpedia.jsonl", "test": "test_data_dbpedia.jsonl"}
TSV_COLUMNS = ("dialog_id", "speaker", "text", "text_with_placeholder", "movie_dict")
TITLE_PLACEHOLDER = re.compile(r"\[MOVIE_TITLE_(\d+)\]")


class _Catalog:
    def __init__(self):
        self.items: dict[str, Item] = {}

    def add(self, name: str) -> tuple[str, str]:
        """Register a movie by its 'Title (Year)' name; returns (item id, surface to look for in text)."""
        title, year = split_title_year(name)
        item = Item(id=f"{title} ({year})" if year else title, title=title, year=year)
        self.items.setdefault(item.id, item)
        return item.id, title


def _surfaces(names, catalog: _Catalog, problems: Problems, path: Path, line: int) -> list[tuple[str, str]]:
    """Register a turn's movie names; an empty name is dropped and counted as a warning."""
    if any(not n.strip() for n in names):
        problems.warn(path, line, f"empty movie name in {list(names)}; dropped")
    return [catalog.add(n) for n in dict.fromkeys(names) if n.strip()]


def _append(turns: list[Turn], role: str, text: str, surfaces: list[tuple[str, str]], counts: dict) -> None:
    marked, unplaced = mark_mentions(text, surfaces)
    counts["mentions"] += len(surfaces)
    counts["unplaced"] += len(unplaced)
    items = list(dict.fromkeys(item_id for item_id, _ in surfaces))
    append_turn(turns, role, marked, items)


def load_tsv(path: Path, catalog: _Catalog, problems: Problems, counts: dict) -> list[Dialogue]:
    csv.field_size_limit(1 << 30)
    dialogues: dict[str, Dialogue] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, [])
        missing = [c for c in TSV_COLUMNS if c not in header]
        if missing:
            problems.report(path, 1, f"header lacks column(s) {missing}")
            return []
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                problems.report(path, line, f"{len(row)} fields, header has {len(header)}")
                continue
            r = dict(zip(header, row))
            role = ROLES.get(r["speaker"])
            if role is None:
                problems.report(path, line, f"speaker '{r['speaker']}' is neither SEEKER nor RECOMMENDER")
                continue
            indices = [int(i) for i in TITLE_PLACEHOLDER.findall(r["text_with_placeholder"])]
            # The official files hold a few broken annotations; the utterance is kept, its movie marks are dropped, counted.
            try:
                movie_dict = ast.literal_eval(r["movie_dict"]) if r["movie_dict"].strip() else {}
            except (ValueError, SyntaxError):
                problems.warn(path, line, f"movie_dict is not a dict literal ({r['movie_dict'][:60]!r}); utterance kept without movie mentions")
                movie_dict, indices = {}, []
            index_to_name = {v: k for k, v in movie_dict.items()}
            if any(i not in index_to_name for i in indices):
                problems.warn(path, line, "[MOVIE_TITLE_n] without an entry in movie_dict; utterance kept without movie mentions")
                indices = []
            surfaces = _surfaces([index_to_name[i] for i in indices], catalog, problems, path, line)
            text = r["text"].replace("QUOTATION_MARK", '"')
            dialogue = dialogues.setdefault(r["dialog_id"], Dialogue(id=r["dialog_id"], turns=[], source=f"{path}:{line}"))
            _append(dialogue.turns, role, text, surfaces, counts)
    return list(dialogues.values())


def load_unicrs(path: Path, catalog: _Catalog, problems: Problems, counts: dict) -> list[Dialogue]:
    dialogues = []
    for line_no, record in read_jsonl(path, problems):
        if not isinstance(record, list) or not all(isinstance(t, dict) and {"text", "role", "movie"} <= t.keys() for t in record):
            problems.report(path, line_no, "expected a list of turns with 'text', 'role' and 'movie'")
            continue
        turns: list[Turn] = []
        for n, t in enumerate(record):
            role = ROLES.get(t["role"])
            if role is None:
                problems.report(path, line_no, f"turn {n}: role '{t['role']}' is neither SEEKER nor RECOMMENDER")
                break
            surfaces = _surfaces(t["movie"], catalog, problems, path, line_no)
            _append(turns, role, t["text"], surfaces, counts)
        else:
            dialogues.append(Dialogue(id=f"{path.stem}:{line_no}", turns=turns, source=f"{path}:{line_no}"))
    return dialogues


def load_inspired(data_dir: Path, fmt: str = "auto", strict: bool = True) -> Dataset:
    """fmt: 'tsv' (original), 'unicrs' (UniCRS-processed), or 'auto': tsv when train.tsv exists, else unicrs."""
    root = data_dir / "inspired"
    tsv_dir, unicrs_dir = root / "dialog_data", root / "unicrs_dbpedia"
    if fmt == "auto":
        fmt = "tsv" if (tsv_dir / "train.tsv").exists() or not unicrs_dir.exists() else "unicrs"
    problems, catalog = Problems(strict), _Catalog()
    counts = {"mentions": 0, "unplaced": 0}
    notes, splits = [], {}
    if fmt == "tsv":
        require(tsv_dir / "test.tsv", "inspired", DOWNLOAD)
        for split, name in TSV_SPLITS.items():
            if (tsv_dir / name).exists():
                splits[split] = load_tsv(tsv_dir / name, catalog, problems, counts)
            else:
                notes.append(f"{tsv_dir / name} absent: no {split} split in TSV format")
    elif fmt == "unicrs":
        for split, name in UNICRS_SPLITS.items():
            splits[split] = load_unicrs(require(unicrs_dir / name, "inspired", DOWNLOAD), catalog, problems, counts)
    else:
        raise ValueError(f"unknown INSPIRED format '{fmt}' (tsv, unicrs or auto)")
    notes.append(f"format {fmt}; {counts['unplaced']} of {counts['mentions']} movie mentions not found in the turn text (kept without a span)")
    notes.append("catalog = the movies mentioned in the loaded splits (movie_database.tsv is not read)")
    return Dataset(f"inspired_{fmt}", catalog.items, splits, notes + problems.summary())
