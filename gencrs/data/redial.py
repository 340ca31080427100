"""ReDial (Li et al., NeurIPS 2018) in its original release format.

Files under DATA_DIR/redial/: movies_with_mentions.csv, test_data.jsonl, train_data.jsonl (official). Where the official
train file is absent, train_subset/train_data.subset.jsonl (a partial copy in the same format) is used and noted.
Optional metadata: DATA_DIR/redial_kg/ievalm/id2info.json (genre, plot, director, writer, stars).
"""

import csv
import json
import re
from pathlib import Path

from gencrs.data.paths import require
from gencrs.data.problems import Problems, read_jsonl
from gencrs.data.schema import (
    Dataset,
    Dialogue,
    Feedback,
    Item,
    Turn,
    append_turn,
    split_title_year,
)
from gencrs.data.splits import carve_valid, carved_note
from gencrs.errors import DataError
from gencrs.format import mention

DOWNLOAD = (
    "Download redial_dataset.zip (train_data.jsonl, test_data.jsonl, movies_with_mentions.csv) from "
    "https://github.com/ReDialData/website/tree/data and unzip it into DATA_DIR/redial/."
)
AT_MENTION = re.compile(r"@(\d+)")


def load_catalog(path: Path, problems: Problems) -> dict[str, Item]:
    catalog = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"movieId", "movieName"} - set(reader.fieldnames or [])
        if missing:
            problems.report(path, 1, f"header lacks column(s) {sorted(missing)}")
            return catalog
        for row in reader:
            movie_id = (row["movieId"] or "").strip()
            if not movie_id or not row["movieName"]:
                problems.report(path, reader.line_num, "empty movieId or movieName")
                continue
            if movie_id in catalog:
                problems.report(path, reader.line_num, f"duplicate movieId {movie_id}")
                continue
            title, year = split_title_year(row["movieName"])
            catalog[movie_id] = Item(id=movie_id, title=title, year=year)
    return catalog


def add_metadata(catalog: dict[str, Item], path: Path) -> int:
    """Fill genres/people/plot from iEvaLM's id2info.json; returns how many catalog items got metadata."""
    info = json.loads(path.read_text(encoding="utf-8"))
    filled = 0
    for movie_id, meta in info.items():
        item = catalog.get(str(movie_id))
        if item is None:
            continue
        item.genres = list(meta.get("genre") or [])
        item.actors = list(meta.get("star") or [])
        item.directors = list(meta.get("director") or [])
        item.writers = list(meta.get("writer") or [])
        item.plot = meta.get("plot") or None
        filled += item.has_metadata
    return filled


def parse_dialogue(record, path: Path, line: int, catalog: dict[str, Item], problems: Problems) -> Dialogue | None:
    if not isinstance(record, dict):
        problems.report(path, line, "record is not a JSON object")
        return None
    for key in ("messages", "conversationId", "initiatorWorkerId", "respondentWorkerId"):
        if key not in record:
            problems.report(path, line, f"missing field '{key}'")
            return None
    roles = {record["initiatorWorkerId"]: "user", record["respondentWorkerId"]: "assistant"}
    turns: list[Turn] = []
    for n, message in enumerate(record["messages"]):
        if not isinstance(message, dict) or "text" not in message or "senderWorkerId" not in message:
            problems.report(path, line, f"messages[{n}] lacks 'text' or 'senderWorkerId'")
            return None
        role = roles.get(message["senderWorkerId"])
        if role is None:
            problems.report(path, line, f"messages[{n}] sender {message['senderWorkerId']} is neither initiator nor respondent")
            return None
        unknown = [m for m in AT_MENTION.findall(message["text"]) if m not in catalog]
        if unknown:
            problems.report(path, line, f"messages[{n}] mentions unknown movie id(s) {', '.join('@' + u for u in unknown)}")
            return None
        text = AT_MENTION.sub(lambda m: mention(m.group(1)), message["text"]).strip()
        items = list(dict.fromkeys(AT_MENTION.findall(message["text"])))
        append_turn(turns, role, text, items)
    return Dialogue(id=str(record["conversationId"]), turns=turns, source=f"{path}:{line}",
                    feedback=seeker_feedback(record.get("initiatorQuestions"), catalog))


ANSWER = {0: False, 1: True, 2: None}  # ReDial's form: 0 no, 1 yes, 2 did not say


def seeker_feedback(questions, catalog: dict[str, Item]) -> dict[str, Feedback]:
    """initiatorQuestions {movieId: {"suggested", "seen", "liked"}} -> item id -> Feedback (a dialogue the seeker did
    not answer for has an empty list there)."""
    if not isinstance(questions, dict):
        return {}
    return {str(movie_id): Feedback(seen=ANSWER.get(answers.get("seen")), liked=ANSWER.get(answers.get("liked")))
            for movie_id, answers in questions.items() if str(movie_id) in catalog and isinstance(answers, dict)}


def load_dialogues(path: Path, catalog: dict[str, Item], problems: Problems) -> list[Dialogue]:
    dialogues, seen = [], set()
    for line_no, record in read_jsonl(path, problems):
        dialogue = parse_dialogue(record, path, line_no, catalog, problems)
        if dialogue is None:
            continue
        if dialogue.id in seen:
            problems.report(path, line_no, f"duplicate conversationId {dialogue.id}")
            continue
        seen.add(dialogue.id)
        dialogues.append(dialogue)
    return dialogues


def extra_train(root: Path, train: list[Dialogue], catalog: dict[str, Item], problems: Problems) -> list[Dialogue]:
    """The train dialogues of iEvaLM's validation file (derived/ievalm_valid_data.jsonl: official train dialogues, their
    messages already merged per speaker turn) that the train subset lacks."""
    have = {d.id for d in train}
    return [d for d in load_dialogues(root / "derived" / "ievalm_valid_data.jsonl", catalog, problems) if d.id not in have]


def approximate_dialogues(root: Path, catalog: dict[str, Item]) -> list[Dialogue]:
    """The official train dialogues that the train subset lacks (6,624 of 10,006), rebuilt from derived/precessed.json:
    every train dialogue in the official order with each speaker's messages in order but their interleaving and the
    speakers' roles lost. The two speakers' messages are interleaved by relative position (message i of n at
    (i + 1/2) / n), and the first speaker is taken to be the recommender (true of 2,196 of the 3,382 subset dialogues),
    so turn order and roles are approximate. The subset's dialogues are skipped by their position in the official order
    (train_subset/provenance.tsv)."""
    precessed = require(root / "derived" / "precessed.json", "redial_mentions", "It ships with the shared data (docs/data.md).")
    provenance = require(root / "train_subset" / "provenance.tsv", "redial_mentions", "It ships with the shared data (docs/data.md).")
    with open(provenance, newline="") as f:
        in_subset = {int(row["position_in_full_train"]) for row in csv.DictReader(f, delimiter="\t")}
    dialogues = []
    for position, entry in enumerate(json.loads(precessed.read_text())):
        if position in in_subset:
            continue
        unknown = [m for text in entry["questions"] + entry["answers"] for m in AT_MENTION.findall(text) if m not in catalog]
        if unknown:
            raise DataError(f"{precessed}: entry {position}: unknown movie id(s) {', '.join('@' + u for u in unknown)}")
        dialogues.append(Dialogue(id=f"precessed:{position}", turns=approximate_turns(entry), source=f"{precessed}: entry {position}"))
    return dialogues


def approximate_turns(entry: dict) -> list[Turn]:
    """One precessed.json entry's turns: the first speaker's messages (`questions`, taken as the recommender's) and the
    other's (`answers`) interleaved by relative position."""
    messages = sorted([((n + 0.5) / len(entry[speaker]), rank, role, text)
                       for rank, (speaker, role) in enumerate((("questions", "assistant"), ("answers", "user")))
                       for n, text in enumerate(entry[speaker])])
    turns: list[Turn] = []
    for _, _, role, text in messages:
        append_turn(turns, role, AT_MENTION.sub(lambda m: mention(m.group(1)), text), AT_MENTION.findall(text))
    return turns


def load_redial(data_dir: Path, strict: bool = True, extended: bool = False, mentions: bool = False) -> Dataset:
    """`extended` (dataset `redial_extended`): where the official train file is absent, the train subset plus the
    official train dialogues of iEvaLM's file that it lacks (654). `mentions` (dataset `redial_mentions`): the same
    dialogues as `redial`, plus the rest of the official train in approximate turns (approximate_dialogues) for item
    counts and, where asked, the rec teacher's train instances."""
    root = data_dir / "redial"
    problems = Problems(strict)
    catalog = load_catalog(require(root / "movies_with_mentions.csv", "redial", DOWNLOAD), problems)
    notes = []
    metadata = data_dir / "redial_kg" / "ievalm" / "id2info.json"
    if metadata.exists():
        notes.append(f"metadata from {metadata} for {add_metadata(catalog, metadata)} items")
    test = load_dialogues(require(root / "test_data.jsonl", "redial", DOWNLOAD), catalog, problems)
    train_path = root / "train_data.jsonl"
    if not train_path.exists() and (root / "train_subset" / "train_data.subset.jsonl").exists():
        train_path = root / "train_subset" / "train_data.subset.jsonl"
        notes.append(f"official train_data.jsonl absent: train is the partial copy {train_path}")
    train = load_dialogues(require(train_path, "redial", DOWNLOAD), catalog, problems)
    if extended and train_path.parent.name == "train_subset":
        extra = extra_train(root, train, catalog, problems)
        train += extra
        notes.append(f"train extended with {len(extra)} official train dialogues of {root / 'derived' / 'ievalm_valid_data.jsonl'}")
    train, valid = carve_valid(train)
    notes.append(carved_note(valid))
    approximate = []
    if mentions and train_path.parent.name == "train_subset":
        approximate = approximate_dialogues(root, catalog)
        notes.append(f"item counts (popularity, co-mentions) also read the {len(approximate)} official train dialogues the "
                     f"subset lacks, in approximate turns from {root / 'derived' / 'precessed.json'}")
    name = "redial_extended" if extended else "redial_mentions" if mentions else "redial"
    return Dataset(name, catalog, {"train": train, "valid": valid, "test": test}, notes + problems.summary(),
                   approximate_train=approximate)
