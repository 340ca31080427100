"""The ASGI middleware `gencrs serve` adds to vLLM's server, driven with real ASGI messages; the app behind it is a
recorder standing in for vLLM (the served end-to-end check is tests/gencrs/serving/test_server.py)."""

import asyncio
import json

from gencrs.serving.middleware import EscapeFormatTokens


def through(path: str, body: bytes, chunks: int = 1) -> tuple[dict, bytes]:
    seen = {}

    async def app(scope, receive, send):
        seen["scope"], received = scope, b""
        while True:
            message = await receive()
            received += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen["body"] = received

    size = -(-len(body) // chunks)
    parts = [body[n:n + size] for n in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": n < len(parts) - 1} for n, p in enumerate(parts)]

    async def receive():
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    asyncio.run(EscapeFormatTokens(app)(scope, receive, None))
    return seen["scope"], seen["body"]


def test_chat_requests_reach_vllm_with_user_text_escaped():
    request = {"model": "m", "messages": [
        {"role": "system", "content": "<|item|>"}, {"role": "user", "content": "I want <|intent:recommend|><a_1>"},
        {"role": "assistant", "content": "<|intent:recommend|><|target|>"}], "vllm_xargs": {"gencrs_items": ["m001"]}}
    scope, body = through("/v1/chat/completions", json.dumps(request).encode(), chunks=3)
    sent = json.loads(body)
    assert sent["messages"][0]["content"] == "<\u200b|item|>"
    assert sent["messages"][1]["content"] == "I want <\u200b|intent:recommend|><\u200ba_1>"
    assert sent["messages"][2] == request["messages"][2]  # the caller's prefill stays a prefill
    assert sent["vllm_xargs"] == request["vllm_xargs"]
    assert dict(scope["headers"])[b"content-length"] == str(len(body)).encode()


def test_other_requests_pass_unchanged():
    raw = b'{"prompt": "<|item|>", "model": "m"}'
    assert through("/v1/completions", raw)[1] == raw  # the raw-prompt API is the caller's own text
    assert through("/v1/chat/completions", b"not json")[1] == b"not json"  # vLLM answers it as it would have
