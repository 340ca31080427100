"""Own data: a directory of JSON Lines files in the normalized schema (docs/data.md, "Your own data").

    DIR/catalog.jsonl   one item per line: {"id", "title", "year"?, "genres"?, "actors"?, "directors"?, "writers"?,
                        "plot"?, any other field: a string or a list of strings ("authors", "brand")}
    DIR/train.jsonl     one dialogue per line: {"id"?, "turns": [{"role", "text", "items"?, "mentions"?}, ...],
                        "feedback"?: {ITEM: {"seen", "liked"}}}
    DIR/valid.jsonl     optional; when absent, 10% of train is carved out with a fixed seed (as for ReDial)
    DIR/test.jsonl      optional
    DIR/kg.jsonl        optional: {"head", "relation", "tail"}; a head or tail that is a catalog id is that item
    DIR/dataset.json    optional: {"name", "notes"} (default name: the directory's name)

A turn marks its item mentions in `text` as [[item:ID]], or gives them as `mentions` spans ({"item", "start", "end"},
character offsets into `text`); `items` lists every item the turn mentions when some have no span. `export_dataset`
writes any loaded dataset in this format; loading the export gives the dataset back.
"""

import json
from pathlib import Path

from gencrs.data.problems import Problems, read_jsonl
from gencrs.data.schema import (
    ROLES,
    Dataset,
    Dialogue,
    Feedback,
    Item,
    Turn,
    append_turn,
)
from gencrs.data.splits import SPLITS, carve_valid, carved_note
from gencrs.errors import DataError
from gencrs.format import mention, mentioned_ids
from gencrs.io import atomic_dir

CATALOG, KG, MANIFEST = "catalog.jsonl", "kg.jsonl", "dataset.json"
LIST_FIELDS = ("genres", "actors", "directors", "writers")
ITEM_FIELDS = ("id", "title", "year", *LIST_FIELDS, "plot")


class _Invalid(Exception):
    """A record's field is malformed: reported once, by the reader of the record, with its file and line."""


def _text_list(value, field: str) -> list[str]:
    """A string or a list of strings (numbers are read as strings) -> a list of non-empty strings."""
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        raise _Invalid(f"{field}: expected a string or a list of strings, got {json.dumps(value)[:60]}")
    return [str(v).strip() for v in values if str(v).strip()]


def _identifier(value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise _Invalid(f"{field}: expected a non-empty string, got {json.dumps(value)[:60]}")
    return str(value).strip()


def parse_item(record) -> Item:
    if not isinstance(record, dict):
        raise _Invalid("record is not a JSON object")
    for key in ("id", "title"):
        if key not in record:
            raise _Invalid(f"{key}: missing")
    title, year = record["title"], record.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise _Invalid(f"year: expected an integer or null, got {json.dumps(year)[:60]}")
    if not isinstance(title, str) or not (title.strip() or year):  # ReDial has one movie known by its year alone
        raise _Invalid(f"title: expected a non-empty string, got {json.dumps(title)[:60]}")
    plot = record.get("plot")
    if plot is not None and not isinstance(plot, str):
        raise _Invalid(f"plot: expected a string, got {json.dumps(plot)[:60]}")
    attributes = {key: _text_list(value, key) for key, value in record.items() if key not in ITEM_FIELDS}
    return Item(id=_identifier(record["id"], "id"), title=title.strip(), year=year, plot=plot or None,
                **{key: _text_list(record.get(key) or [], key) for key in LIST_FIELDS},
                attributes={key: values for key, values in attributes.items() if values})


def _parsed(path: Path, problems: Problems, parse):
    """(line, parse(record)) for each record of `path` that parses; the others are reported with file, line and field."""
    for line, record in read_jsonl(path, problems):
        try:
            value = parse(record)
        except _Invalid as e:
            problems.report(path, line, str(e))
            continue
        yield line, value


def load_catalog(path: Path, problems: Problems) -> dict[str, Item]:
    catalog: dict[str, Item] = {}
    for line, item in _parsed(path, problems, parse_item):
        if item.id in catalog:
            problems.report(path, line, f"id: duplicate item id {item.id!r}")
            continue
        catalog[item.id] = item
    if not catalog:
        raise DataError(f"{path}: the catalog is empty: at least one item is needed")
    return catalog


def _apply_spans(text: str, spans, field: str, catalog: dict[str, Item]) -> str:
    """Replace each {"item", "start", "end"} span of `text` with the item's placeholder (last span first)."""
    if not isinstance(spans, list):
        raise _Invalid(f"{field}: expected a list of {{item, start, end}}")
    parsed = []
    for n, span in enumerate(spans):
        where = f"{field}[{n}]"
        if not isinstance(span, dict) or not {"item", "start", "end"} <= span.keys():
            raise _Invalid(f"{where}: expected an object with item, start and end")
        start, end = span["start"], span["end"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end <= len(text):
            raise _Invalid(f"{where}: start {start} / end {end} are not a span of the text ({len(text)} characters)")
        parsed.append((start, end, _known(span["item"], f"{where}.item", catalog)))
    parsed.sort()
    for (_, end, _), (start, _, _) in zip(parsed, parsed[1:]):
        if start < end:
            raise _Invalid(f"{field}: spans overlap")
    for start, end, item_id in reversed(parsed):
        text = text[:start] + mention(item_id) + text[end:]
    return text


def _known(value, field: str, catalog: dict[str, Item]) -> str:
    item_id = _identifier(value, field)
    if item_id not in catalog:
        raise _Invalid(f"{field}: item {item_id!r} is not in the catalog")
    return item_id


def parse_turn(turn, field: str, catalog: dict[str, Item]) -> Turn:
    if not isinstance(turn, dict):
        raise _Invalid(f"{field}: expected an object with role and text")
    role, text = turn.get("role"), turn.get("text")
    if role not in ROLES:
        raise _Invalid(f"{field}.role: " + ("missing" if role is None else f"{json.dumps(role)[:40]} is not one of {', '.join(ROLES)}"))
    if not isinstance(text, str) or not text.strip():
        raise _Invalid(f"{field}.text: " + ("missing" if text is None else "expected a non-empty string"))
    if "mentions" in turn:
        text = _apply_spans(text, turn["mentions"], f"{field}.mentions", catalog)
    marked = list(dict.fromkeys(_known(i, f"{field}.text", catalog) for i in mentioned_ids(text)))
    if "items" not in turn:
        return Turn(role=role, text=text.strip(), items=marked)
    if not isinstance(turn["items"], list):
        raise _Invalid(f"{field}.items: expected a list of item ids")
    items = list(dict.fromkeys(_known(i, f"{field}.items[{n}]", catalog) for n, i in enumerate(turn["items"])))
    unlisted = [i for i in marked if i not in items]
    if unlisted:
        raise _Invalid(f"{field}.items: lacks {', '.join(unlisted)}, marked in the text")
    return Turn(role=role, text=text.strip(), items=items)


def parse_feedback(feedback, catalog: dict[str, Item]) -> dict[str, Feedback]:
    """{"ITEM": {"seen": true|false|null, "liked": true|false|null}}: what the seeker said of items (ReDial has it)."""
    if not isinstance(feedback, dict):
        raise _Invalid("feedback: expected an object {item id: {seen, liked}}")
    parsed = {}
    for item, answers in feedback.items():
        where = f"feedback.{item}"
        _known(item, where, catalog)
        if not isinstance(answers, dict) or not set(answers) <= {"seen", "liked"} \
                or not all(v is None or isinstance(v, bool) for v in answers.values()):
            raise _Invalid(f"{where}: expected {{\"seen\": true|false|null, \"liked\": true|false|null}}")
        parsed[item] = Feedback(seen=answers.get("seen"), liked=answers.get("liked"))
    return parsed


def parse_dialogue(record, catalog: dict[str, Item]) -> Dialogue:
    """A dialogue without an `id` gets "" here, and its file's "split:line" from the reader."""
    if not isinstance(record, dict):
        raise _Invalid("record is not a JSON object")
    turns = record.get("turns")
    if not isinstance(turns, list) or not turns:
        raise _Invalid("turns: " + ("missing" if turns is None else "expected a non-empty list of turns"))
    dialogue = Dialogue(id=_identifier(record["id"], "id") if "id" in record else "", turns=[],
                        feedback=parse_feedback(record.get("feedback", {}), catalog))
    for n, raw in enumerate(turns):
        turn = parse_turn(raw, f"turns[{n}]", catalog)
        append_turn(dialogue.turns, turn.role, turn.text, turn.items)
    return dialogue


def load_dialogues(path: Path, catalog: dict[str, Item], problems: Problems, seen: dict[str, str]) -> list[Dialogue]:
    """`seen`: dialogue id -> where it was read, across splits (an id names one dialogue in the whole dataset)."""
    dialogues = []
    for line, dialogue in _parsed(path, problems, lambda record: parse_dialogue(record, catalog)):
        dialogue.id = dialogue.id or f"{path.stem}:{line}"
        if dialogue.id in seen:
            problems.report(path, line, f"id: duplicate dialogue id {dialogue.id!r} (first at {seen[dialogue.id]})")
            continue
        dialogue.source = seen[dialogue.id] = f"{path}:{line}"
        dialogues.append(dialogue)
    return dialogues


def parse_triple(record) -> tuple[str, str, str]:
    if not isinstance(record, dict):
        raise _Invalid("record is not a JSON object")
    for key in ("head", "relation", "tail"):
        if key not in record:
            raise _Invalid(f"{key}: missing")
    return tuple(_identifier(record[key], key) for key in ("head", "relation", "tail"))


def load_kg(path: Path, problems: Problems) -> list[tuple[str, str, str]]:
    return [triple for _, triple in _parsed(path, problems, parse_triple)]


def is_dataset_dir(path: str | Path) -> bool:
    return (Path(path) / CATALOG).is_file()


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("name", ""), str) \
            or not isinstance(manifest.get("notes", []), list):
        raise DataError(f'{path}: expected {{"name": string, "notes": [strings]}}')
    return manifest


def load_files(directory: str | Path, strict: bool = True) -> Dataset:
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory")
    if not (root / CATALOG).is_file():
        raise DataError(f"{root}: no {CATALOG} (a dataset directory holds {CATALOG} and train.jsonl; docs/data.md)")
    problems = Problems(strict)
    for path in sorted(root.glob("*.jsonl")):
        if path.name not in (CATALOG, KG) and path.stem not in SPLITS:
            problems.report(path, None, f"split name {path.stem!r} is not one of {', '.join(SPLITS)} (rename the file)")
    manifest = read_manifest(root / MANIFEST) if (root / MANIFEST).is_file() else {}
    catalog = load_catalog(root / CATALOG, problems)
    if not (root / "train.jsonl").is_file():
        raise DataError(f"{root}: no train.jsonl (the train split's dialogues; docs/data.md)")
    seen: dict[str, str] = {}
    splits = {split: load_dialogues(root / f"{split}.jsonl", catalog, problems, seen)
              for split in SPLITS if (root / f"{split}.jsonl").is_file()}
    notes = list(manifest.get("notes", []))
    if "valid" not in splits:
        splits["train"], splits["valid"] = carve_valid(splits["train"])
        notes.append(carved_note(splits["valid"]))
    splits = {split: splits[split] for split in SPLITS if split in splits}
    kg = load_kg(root / KG, problems) if (root / KG).is_file() else []
    return Dataset(manifest.get("name") or root.resolve().name, catalog, splits, notes + problems.summary(), kg=kg,
                   path=str(root))


def item_record(item: Item) -> dict:
    record = {"id": item.id, "title": item.title}
    if item.year is not None:
        record["year"] = item.year
    record.update({key: getattr(item, key) for key in LIST_FIELDS if getattr(item, key)})
    if item.plot:
        record["plot"] = item.plot
    return record | item.attributes


def turn_record(turn: Turn) -> dict:
    record = {"role": turn.role, "text": turn.text}
    if turn.items != list(dict.fromkeys(mentioned_ids(turn.text))):
        record["items"] = turn.items  # some items have no span in the text, or are listed in another order
    return record


def dialogue_record(dialogue: Dialogue) -> dict:
    record = {"id": dialogue.id, "turns": [turn_record(t) for t in dialogue.turns]}
    if dialogue.feedback:
        record["feedback"] = {item: {"seen": f.seen, "liked": f.liked} for item, f in dialogue.feedback.items()}
    return record


def _jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def export_dataset(dataset: Dataset, out: str | Path) -> dict:
    """Write `dataset` as a dataset directory (atomically: `out` appears complete or not at all). Returns counts."""
    with atomic_dir(out) as tmp:
        (tmp / CATALOG).write_text(_jsonl(item_record(i) for i in dataset.catalog.values()), encoding="utf-8")
        for split, dialogues in dataset.splits.items():
            (tmp / f"{split}.jsonl").write_text(
                _jsonl(dialogue_record(d) for d in dialogues), encoding="utf-8")
        if dataset.kg:
            (tmp / KG).write_text(_jsonl({"head": h, "relation": r, "tail": t} for h, r, t in dataset.kg), encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps({"name": dataset.name, "notes": dataset.notes}, indent=2,
                                               ensure_ascii=False) + "\n", encoding="utf-8")
    return {"out": str(out), "items": len(dataset.catalog), "kg_triples": len(dataset.kg),
            **{split: len(dialogues) for split, dialogues in dataset.splits.items()}}
