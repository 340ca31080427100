"""ASGI middleware for vLLM's server (`--middleware gencrs.serving.middleware.EscapeFormatTokens`, added by `gencrs
serve`): in chat requests, the project's token strings inside non-assistant message content are escaped before vLLM
renders the chat template, so they reach the model as plain text and a user cannot forge the turn's structure.

vLLM tokenizes the rendered prompt as one string, where the format tokens would otherwise be read as the special
tokens themselves. The escape is gencrs.format.escape_message, the same one that training and offline evaluation apply
through gencrs.format.prompt_messages.

A model trained with `context_codes` reads the items the conversation has mentioned as code tokens in a first system
message. The request names them in the top-level field `gencrs_context_items` (item ids, in order of first mention);
the middleware checks them against the served catalog (an unknown id is HTTP 400) and builds that message as
training does (gencrs.format.context_items_message), after the escape, so that only this field can put code tokens in
the prompt. For another model the field is dropped.
"""

import json
import os
from pathlib import Path

from gencrs.format import context_items_message, escape_message
from gencrs.model_dir import reads_context_codes
from gencrs.serving.processor import MODEL_ENV
from tokenizer_ext.codebook import CodeBook

ESCAPED_PATHS = ("/chat/completions", "/tokenize")
CONTEXT_ITEMS = "gencrs_context_items"


class BadRequest(ValueError):
    pass


def served_codes() -> CodeBook | None:
    """The served model's code table when it reads the context's items as codes (`context_codes`), else None."""
    directory = os.environ.get(MODEL_ENV)
    if directory and reads_context_codes(directory):
        return CodeBook.load(Path(directory))
    return None


class EscapeFormatTokens:
    def __init__(self, app):
        self.app = app
        self.codes = served_codes()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(ESCAPED_PATHS):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            escaped = _escaped(body, self.codes)
        except BadRequest as error:
            await _bad_request(send, str(error))
            return
        if escaped is not None:
            body = escaped
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _escaped(body: bytes, codes: CodeBook | None = None) -> bytes | None:
    """The request body with its messages escaped (and, for a `context_codes` model, opened with the codes of
    `gencrs_context_items`), or None when it is no JSON object with messages (vLLM then answers it as it would have).
    Raises BadRequest for context items that are not catalog item ids."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        return None
    items = payload.pop(CONTEXT_ITEMS, None) or []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadRequest(f"{CONTEXT_ITEMS} holds item ids (a list of strings), got {items!r}")
    unknown = [i for i in items if codes is not None and i not in codes.item_codes]
    if unknown:
        raise BadRequest(f"{CONTEXT_ITEMS}: {', '.join(map(repr, unknown))} not catalog item ids")
    payload["messages"] = [escape_message(m) if isinstance(m, dict) else m for m in payload["messages"]]
    if codes is not None and items:
        payload["messages"].insert(0, context_items_message([codes.text(i) for i in dict.fromkeys(items)]))
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


async def _bad_request(send, message: str) -> None:
    """An OpenAI-style error answer, as vLLM gives for its own bad requests."""
    body = json.dumps({"error": {"message": message, "type": "BadRequestError", "param": CONTEXT_ITEMS,
                                 "code": 400}}).encode("utf-8")
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _replay(messages: list[dict], receive):
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()
    return replayed
