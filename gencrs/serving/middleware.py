"""ASGI middleware for vLLM's server (`--middleware gencrs.serving.middleware.EscapeFormatTokens`, added by `gencrs
serve`): in chat requests, the project's token strings inside non-assistant message content are escaped before vLLM
renders the chat template, so they reach the model as plain text and a user cannot forge the turn's structure.

vLLM tokenizes the rendered prompt as one string, where the format tokens would otherwise be read as the special
tokens themselves. The escape is gencrs.format.escape_message, the same one that training and offline evaluation apply
through gencrs.format.prompt_messages.
"""

import json

from gencrs.format import escape_message

ESCAPED_PATHS = ("/chat/completions", "/tokenize")


class EscapeFormatTokens:
    def __init__(self, app):
        self.app = app

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
        escaped = _escaped(body)
        if escaped is not None:
            body = escaped
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _escaped(body: bytes) -> bytes | None:
    """The request body with its messages escaped, or None when it is no JSON object with messages (vLLM then
    answers it as it would have)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        return None
    payload["messages"] = [escape_message(m) if isinstance(m, dict) else m for m in payload["messages"]]
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _replay(messages: list[dict], receive):
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()
    return replayed
