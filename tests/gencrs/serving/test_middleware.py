"""The ASGI middleware `gencrs serve` adds to vLLM's server, driven with real ASGI messages; the app behind it is a
recorder standing in for vLLM (the served end-to-end check is tests/gencrs/serving/test_server.py)."""

import asyncio
import json

import pytest

from gencrs import model_dir
from gencrs.serving.middleware import EscapeFormatTokens
from gencrs.serving.processor import MODEL_ENV
from tokenizer_ext import CodeBook


def through(path: str, body: bytes, chunks: int = 1, sent: list | None = None) -> tuple[dict, bytes]:
    """The scope and body the app behind the middleware receives ({} and b"" when the middleware answered itself;
    what it sent then is appended to `sent`)."""
    seen = {"scope": {}, "body": b""}

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
    async def send(message):
        sent.append(message)

    asyncio.run(EscapeFormatTokens(app)(scope, receive, send))
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


@pytest.fixture
def served_dir(tmp_path, monkeypatch):
    """served_dir(context_codes): a served model's gencrs files (codes, catalog, flag), named by the env `gencrs
    serve` sets."""
    def make(context_codes: bool):
        directory = tmp_path / f"served_{context_codes}"
        directory.mkdir()
        (directory / "config.json").write_text("{}")
        model_dir.write(directory, CodeBook(2, 4, {"m1": (0, 1), "m2": (1, 2)}), {"m1": "One", "m2": "Two"},
                        context_codes=context_codes)
        monkeypatch.setenv(MODEL_ENV, str(directory))
        return directory
    return make


def test_a_context_codes_model_reads_the_requests_context_items_as_a_first_system_message(served_dir):
    """The codes come from `gencrs_context_items` alone, after the escape: the same message training puts first
    (gencrs.format.context_items_message); code strings a user types stay plain text."""
    from gencrs.format import prompt_messages

    served_dir(context_codes=True)
    request = {"model": "m", "messages": [{"role": "user", "content": "I liked One <a_0><b_1>"}],
               "gencrs_context_items": ["m2", "m1", "m2"]}
    sent = json.loads(through("/v1/chat/completions", json.dumps(request).encode())[1])
    assert sent["messages"] == prompt_messages(request["messages"], ["<a_1><b_2>", "<a_0><b_1>"])
    assert sent["messages"][0] == {"role": "system", "content": "<a_1><b_2> <a_0><b_1>"}
    assert sent["messages"][1]["content"] == "I liked One <\u200ba_0><\u200bb_1>"
    assert "gencrs_context_items" not in sent


def test_context_items_are_dropped_for_another_model_and_unknown_ids_are_a_400(served_dir):
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "gencrs_context_items": ["m1"]}
    served_dir(context_codes=False)
    sent = json.loads(through("/v1/chat/completions", json.dumps(request).encode())[1])
    assert sent == {"model": "m", "messages": request["messages"]}
    served_dir(context_codes=True)
    answered = []
    for items, named in ((["m1", "nope"], "'nope'"), ("m1", "a list of strings")):
        answered.clear()
        scope, body = through("/v1/chat/completions", json.dumps({**request, "gencrs_context_items": items}).encode(),
                              sent=answered)
        assert (scope, body) == ({}, b"")  # vLLM never saw it
        assert answered[0]["status"] == 400
        assert named in json.loads(answered[1]["body"])["error"]["message"]
