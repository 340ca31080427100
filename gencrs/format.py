"""The one place that defines the assistant-turn output format and its special tokens.

An assistant turn is written as
    <|intent:recommend|><|target|><a_12><b_7><c_201><|/target|><|response|>Have you seen <|item|>Titanic (1997)<|/item|>? ...
Intent and span markers are special tokens, so a client that skips special tokens reads only the response text.
Inside the data layer an item mention is a placeholder `[[item:ID]]` that each consumer renders as it needs
(a plain title in context, a marked span in the response).
"""

import re

INTENTS = ("recommend", "discuss", "elicit", "chat")
INTENT_TOKENS = {intent: f"<|intent:{intent}|>" for intent in INTENTS}
TARGET_START, TARGET_END = "<|target|>", "<|/target|>"
RESPONSE_START = "<|response|>"
ITEM_START, ITEM_END = "<|item|>", "<|/item|>"
SPECIAL_TOKENS = (*INTENT_TOKENS.values(), TARGET_START, TARGET_END, RESPONSE_START, ITEM_START, ITEM_END)

MENTION_RE = re.compile(r"\[\[item:([^\[\]]+)\]\]")


def mention(item_id: str) -> str:
    return f"[[item:{item_id}]]"


def mentioned_ids(text: str) -> list[str]:
    return MENTION_RE.findall(text)


def render_mentions(text: str, title_of, marked: bool = False) -> str:
    """Replace each `[[item:ID]]` with the item's title, wrapped in item markers when `marked`."""
    if marked:
        return MENTION_RE.sub(lambda m: f"{ITEM_START}{title_of(m.group(1))}{ITEM_END}", text)
    return MENTION_RE.sub(lambda m: title_of(m.group(1)), text)


def coarse_intent(intent: str) -> str:
    return "recommend" if intent == "recommend" else "chat"
