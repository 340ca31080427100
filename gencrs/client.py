"""Client helper for a `gencrs serve` endpoint: request options and parsing of structured replies.

A plain chat request (special tokens skipped, the default) reads as ordinary text with real titles. A structured
request (`skip_special_tokens: false`) returns the whole turn, `<|intent:X|><|target|>codes<|/target|><|response|>...`,
which `parse_reply` turns into intent, item ids with titles, and the response. The code table and titles come from
the exported model directory (codes.json, catalog.json).

    from openai import OpenAI
    from gencrs.client import Catalog, recommend
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="...")
    reply = recommend(client, "student_synthetic", [{"role": "user", "content": "I love horror movies."}],
                      Catalog.load("runs/export/student_synthetic"))
    reply.items  # [("m042", "The Hidden Harbor (1994)"), ...]
"""

from dataclasses import dataclass, field
from pathlib import Path

from gencrs import model_dir as model_dir_files
from gencrs.format import INTENT_TOKENS, TARGET_START, parse_turn
from tokenizer_ext.codebook import CodeBook


@dataclass
class Catalog:
    codebook: CodeBook
    titles: dict[str, str]  # item id -> title as the model writes it

    @classmethod
    def load(cls, model_dir: str | Path) -> "Catalog":
        return cls(CodeBook.load(model_dir), model_dir_files.read_titles(model_dir))


@dataclass
class Reply:
    intent: str
    items: list[tuple[str, str]]  # the target span's items: (id, title)
    response: str  # the text with item markers removed
    response_titles: list[str]  # titles named in the response's item spans
    invalid_targets: int = 0  # code sequences in the target span that are not catalog items
    text: str = field(default="", repr=False)  # the raw turn


def options(structured: bool = True, constrain: bool | None = None, items: list[str] | None = None,
            exclude: list[str] | None = None, context_items: list[str] | None = None) -> dict:
    """`extra_body` for the openai client: structured output, the gencrs per-request options (vllm_xargs) and the
    items the conversation has mentioned (`gencrs_context_items`, read by a `context_codes` model;
    gencrs.serving.middleware)."""
    xargs = {}
    if constrain is not None:
        xargs["gencrs_constrain"] = constrain
    if items is not None:
        xargs["gencrs_items"] = list(items)
    if exclude is not None:
        xargs["gencrs_exclude"] = list(exclude)
    body = {"skip_special_tokens": False} if structured else {}
    if xargs:
        body["vllm_xargs"] = xargs
    if context_items:
        body["gencrs_context_items"] = list(context_items)
    return body


def parse_reply(text: str, catalog: Catalog) -> Reply:
    turn = parse_turn(text)
    found = catalog.codebook.items_in_text(turn["target"])
    return Reply(intent=turn["intent"], items=[(i, catalog.titles[i]) for i in found if i is not None],
                 response=turn["response"], response_titles=turn["response_titles"],
                 invalid_targets=sum(i is None for i in found), text=text)


def recommend(client, model: str, messages: list[dict], catalog: Catalog, constrain: bool | None = None,
              items: list[str] | None = None, exclude: list[str] | None = None, force_recommend: bool = False,
              context_items: list[str] | None = None, **create_kwargs) -> Reply:
    """One structured chat completion through an `openai.OpenAI` client, parsed. `force_recommend` prefills the turn
    up to the target span (`<|intent:recommend|><|target|>`), so the model must name items now; `context_items`: the
    items the conversation has mentioned so far, in order."""
    body = options(True, constrain, items, exclude, context_items)
    prefill = ""
    if force_recommend:
        prefill = INTENT_TOKENS["recommend"] + TARGET_START
        messages = [*messages, {"role": "assistant", "content": prefill}]
        body.update(add_generation_prompt=False, continue_final_message=True)
    completion = client.chat.completions.create(model=model, messages=messages, extra_body=body, **create_kwargs)
    return parse_reply(prefill + (completion.choices[0].message.content or ""), catalog)
