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


def assistant_turn(intent: str, target_codes: list[str], response: str) -> str:
    """The assistant turn as the model writes it; `target_codes` are the items' code-token strings."""
    return f"{INTENT_TOKENS[intent]}{TARGET_START}{''.join(target_codes)}{TARGET_END}{RESPONSE_START}{response}"


TURN_RE = re.compile(
    r"^\s*(?:<\|intent:(?P<intent>\w+)\|>)?(?:" + re.escape(TARGET_START) + r"(?P<target>.*?)(?:" + re.escape(TARGET_END)
    + r"|$))?(?:" + re.escape(RESPONSE_START) + r")?(?P<response>.*)$", re.DOTALL)
ITEM_SPAN_RE = re.compile(re.escape(ITEM_START) + r"(.*?)" + re.escape(ITEM_END), re.DOTALL)


def parse_turn(text: str) -> dict:
    """Split a generated turn (decoded with special tokens) into intent, raw target span, response text and the
    titles named in the response's item spans. Tolerant: a missing part comes back empty."""
    m = TURN_RE.match(text)
    response = m.group("response") or ""
    return {
        "intent": m.group("intent") or "",
        "target": m.group("target") or "",
        "response_titles": [t.strip() for t in ITEM_SPAN_RE.findall(response)],
        "response": ITEM_SPAN_RE.sub(lambda x: x.group(1), response).strip(),
    }


def prompt_messages(context: list[dict]) -> list[dict]:
    """The chat messages a turn is generated from. An assistant turn that opens a dialogue has no context; chat
    templates refuse an empty conversation, so it becomes one empty user message (in training and inference alike)."""
    return context if context else [{"role": "user", "content": ""}]
