"""The normalized schema every source is loaded into."""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from gencrs.errors import GencrsError

ROLES = ("user", "assistant")
YEAR_RE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


@dataclass
class Item:
    id: str
    title: str
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    directors: list[str] = field(default_factory=list)
    writers: list[str] = field(default_factory=list)
    plot: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)  # any other metadata of own data ("authors", "brand")

    @property
    def display(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    @property
    def has_metadata(self) -> bool:
        return bool(self.genres or self.actors or self.directors or self.writers or self.plot or self.attributes)

    @property
    def text(self) -> str:
        """The text the item is embedded from (its semantic ID, the rec teacher): title, year and the metadata."""
        parts = [self.display]
        if self.genres:
            parts.append("Genres: " + ", ".join(self.genres))
        if self.directors:
            parts.append("Directed by " + ", ".join(self.directors))
        if self.actors:
            parts.append("Starring " + ", ".join(self.actors))
        if self.writers:
            parts.append("Written by " + ", ".join(self.writers))
        if self.plot:
            parts.append(self.plot)
        parts += [f"{name.replace('_', ' ').capitalize()}: {', '.join(values)}" for name, values in self.attributes.items()]
        return ". ".join(p.strip() for p in parts if p and p.strip())


def split_title_year(name: str) -> tuple[str, int | None]:
    """'Police Academy  (1984)' -> ('Police Academy', 1984); a name without a year keeps year None."""
    name = " ".join(name.split())
    match = YEAR_RE.match(name)
    if match:
        return match.group(1), int(match.group(2))
    return name, None


@dataclass
class Turn:
    role: str  # "user" (seeker) or "assistant" (recommender)
    text: str  # item mentions as [[item:ID]] placeholders (gencrs.format)
    items: list[str]  # ids of every item this turn mentions, in order, without repeats


def append_turn(turns: list[Turn], role: str, text: str, items: list[str]) -> None:
    """Every loader's rule: consecutive messages of one speaker form one turn (texts joined with a space, items kept
    in order without repeats)."""
    if turns and turns[-1].role == role:
        turns[-1].text = f"{turns[-1].text} {text}".strip()
        turns[-1].items = list(dict.fromkeys(turns[-1].items + items))
    else:
        turns.append(Turn(role=role, text=text.strip(), items=list(dict.fromkeys(items))))


@dataclass
class Feedback:
    """What the seeker said of an item after the dialogue (ReDial's initiatorQuestions); None: did not say."""
    seen: bool | None = None
    liked: bool | None = None


@dataclass
class Dialogue:
    id: str
    turns: list[Turn]
    source: str = ""  # "file:line" the dialogue was read from
    feedback: dict[str, Feedback] = field(default_factory=dict)  # item id -> the seeker's answers, where known


@dataclass
class Dataset:
    name: str
    catalog: dict[str, Item]
    splits: dict[str, list[Dialogue]]
    notes: list[str] = field(default_factory=list)  # what a reader should know: substitutes used, mentions without a span
    kg: list[tuple[str, str, str]] = field(default_factory=list)  # own data's kg.jsonl: (head, relation, tail)
    path: str | None = None  # the directory of a dataset loaded from files (gencrs.data.files), else None
    # more train dialogues whose turn order and roles are approximate (ReDial's lossy full train: redial_mentions): item
    # counts read them, and the rec teacher's and the student's train instances where their configs ask
    approximate_train: list[Dialogue] = field(default_factory=list)

    def require_approximate_train(self) -> None:
        """Refuses a config's `approximate_train` where the dataset has no approximate dialogues."""
        if not self.approximate_train:
            raise GencrsError(f"approximate_train: dataset {self.name} has no approximate train dialogues "
                              "(redial_mentions has)")

    def train_mentions(self) -> list[list[str]]:
        """The item mentions of every train dialogue, approximate ones included, in order (a turn's repeats once): what
        popularity, co-mention counts and the rec teacher graph's co-mention edges read."""
        return [[i for t in d.turns for i in t.items] for d in self.splits.get("train", []) + self.approximate_train]

    def train_comentions(self) -> dict[str, Counter]:
        """item -> item -> the number of train dialogues (approximate ones included) that mention both: what the
        co-occurrence baseline, the rec teacher's co-mention term and collaborative semantic IDs read."""
        pairs: dict[str, Counter] = defaultdict(Counter)
        for mentions in self.train_mentions():
            items = list(dict.fromkeys(mentions))
            for a in items:
                for b in items:
                    if a != b:
                        pairs[a][b] += 1
        return dict(pairs)

    def title(self, item_id: str) -> str:
        return self.catalog[item_id].display
