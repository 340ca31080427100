"""The item <-> code mapping and the code tokens: `<a_12><b_7><c_201>` (level letter, code number)."""

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from tokenizer_ext.errors import SemanticIdError

CODES_FILE = "codes.json"  # the code table inside a semantic-ID or model directory

LEVEL_LETTERS = string.ascii_lowercase
CODE_TOKEN_RE = re.compile(r"<([a-z])_(\d+)>")


def code_token(level: int, code: int) -> str:
    return f"<{LEVEL_LETTERS[level]}_{code}>"


@dataclass
class CodeBook:
    levels: int
    codes_per_level: int
    item_codes: dict[str, tuple[int, ...]]

    def __post_init__(self):
        self.code_items = {codes: item for item, codes in self.item_codes.items()}
        if len(self.code_items) != len(self.item_codes):
            raise SemanticIdError("code table is not collision-free: two items share a code tuple")

    def all_tokens(self) -> list[str]:
        """Every code token of every level (L x K), used or not, in a fixed order."""
        return [code_token(l, c) for l in range(self.levels) for c in range(self.codes_per_level)]

    def tokens(self, item_id: str) -> list[str]:
        return [code_token(l, c) for l, c in enumerate(self.item_codes[item_id])]

    def text(self, item_id: str) -> str:
        return "".join(self.tokens(item_id))

    def item_of_tokens(self, tokens: list[str]) -> str | None:
        """Code tokens of one item (in level order) -> item id, or None when they name no catalog item."""
        codes = []
        for level, token in enumerate(tokens):
            m = CODE_TOKEN_RE.fullmatch(token)
            if not m or m.group(1) != LEVEL_LETTERS[level]:
                return None
            codes.append(int(m.group(2)))
        return self.code_items.get(tuple(codes))

    def items_in_text(self, text: str) -> list[str | None]:
        """Parse a target span like '<a_1><b_2><c_3><a_4>...' into item ids (None for an invalid sequence)."""
        tokens = [m.group(0) for m in CODE_TOKEN_RE.finditer(text)]
        return [self.item_of_tokens(tokens[i:i + self.levels]) for i in range(0, len(tokens), self.levels)]

    def to_json(self) -> dict:
        return {
            "levels": self.levels, "codes_per_level": self.codes_per_level,
            "item_to_codes": {item: list(codes) for item, codes in self.item_codes.items()},
            "codes_to_item": {"-".join(map(str, codes)): item for item, codes in self.item_codes.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> "CodeBook":
        return cls(data["levels"], data["codes_per_level"], {k: tuple(v) for k, v in data["item_to_codes"].items()})

    def save(self, directory: str | Path, indent: int | None = None) -> str:
        """Writes DIRECTORY/codes.json; returns the text written."""
        text = json.dumps(self.to_json(), indent=indent, ensure_ascii=False)
        (Path(directory) / CODES_FILE).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def load(cls, directory: str | Path) -> "CodeBook":
        path = Path(directory) / CODES_FILE
        if not path.exists():
            raise SemanticIdError(f"no code table at {path} (build one with: python recipes/build_semantic_ids.py dataset=NAME out=DIR)")
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
