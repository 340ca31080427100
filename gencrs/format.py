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


# The strings of the project's tokens: format markers and code tokens (`<a_12>`, tokenizer_ext.codebook).
FORMAT_TOKEN_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS) + r"|<[a-z]_\d+>")
ESCAPE = "\u200b"  # a zero-width space after the '<': the same text to a reader, no longer the token's string


def escape_format_tokens(text: str) -> str:
    """`text` with every string of a project token broken, so that a tokenizer reads it as plain text: a user who
    writes `<|intent:recommend|>` cannot forge the structure of the turn (or a code token) the model reads."""
    return FORMAT_TOKEN_RE.sub(lambda m: m.group(0)[0] + ESCAPE + m.group(0)[1:], text)


def escape_message(message: dict) -> dict:
    """A chat message whose content cannot forge format tokens. Assistant messages are left alone: they are the
    model's own turns (and a prefilled `<|intent:recommend|><|target|>` is the caller's way to ask for items)."""
    content = message.get("content")
    if message.get("role") == "assistant" or not content:
        return message
    if isinstance(content, str):
        return {**message, "content": escape_format_tokens(content)}
    if isinstance(content, list):  # OpenAI content parts
        return {**message, "content": [{**part, "text": escape_format_tokens(part["text"])}
                                       if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                                       for part in content]}
    return message


def prompt_messages(context: list[dict], item_codes: list[str] = ()) -> list[dict]:
    """The chat messages a turn is generated from, with format tokens in user text escaped (as the server does). An
    assistant turn that opens a dialogue has no context; chat templates refuse an empty conversation, so it becomes one
    empty user message (in training and inference alike).

    `item_codes`: for a model that reads the context's items (`context_codes`), the code strings of the items the
    context mentions, in order of first mention. They open the prompt as one system message of code tokens, added
    after the escape, so the model reads each mentioned item as the tokens it writes in a target span; the message
    stays when the oldest context messages are dropped to fit a record's length."""
    messages = [escape_message(m) for m in context] if context else [{"role": "user", "content": ""}]
    return [context_items_message(item_codes), *messages] if item_codes else messages


def context_items_message(item_codes: list[str]) -> dict:
    """The system message that shows a `context_codes` model the context's items: their code strings, in order."""
    return {"role": "system", "content": " ".join(item_codes)}
