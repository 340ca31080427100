"""`gencrs chat`: a conversation in the terminal with a trained or exported model, constrained exactly as served.

    gencrs chat model=runs/student_synthetic/model                        # transformers, the served turn rule
    gencrs chat model=runs/export/student_synthetic url=http://127.0.0.1:8000/v1 api_key=KEY   # a running gencrs serve
    printf 'I love horror movies\\nSomething older?\\n' | gencrs chat model=DIR json=true

Each line read (from the terminal or a pipe) is a user message; the model's turn is printed as its intent, the items
it recommends (id and title: every one a catalog item) and its response, which names only those items. The
conversation so far is the next turn's context, and the items the model has recommended so far are its context items
(what a `context_codes` model reads as codes; the user's own text is not linked to items). Ends on end of input or
Ctrl-C.
"""

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from gencrs.client import Catalog, Reply, parse_reply, recommend


@dataclass
class ChatConfig:
    model: str = "???"  # a trained (OUT/model, OUT/adapter) or exported model directory; with url=, the served one
    url: str | None = None  # a running `gencrs serve` endpoint, e.g. http://127.0.0.1:8000/v1: talk to it instead
    api_key: str | None = None  # the endpoint's key
    served_model_name: str | None = None  # the endpoint's model name (default: the directory's name, as gencrs serve)
    max_new_tokens: int = 96
    json: bool = False  # print one JSON object per turn instead of text


class LocalModel:
    """The model run by transformers under the served turn rule (gencrs.decoding.turn)."""

    def __init__(self, directory: str, max_new_tokens: int):
        # torch and transformers load only when a local model is asked for (the `gencrs` command starts without them)
        from gencrs.decoding.turn import TurnRules
        from gencrs.model import load_trained
        from gencrs.model_dir import read_titles, reads_context_codes

        self.model, self.tokenizer, codebook = load_trained(directory)
        titles, self.context_codes = read_titles(directory), reads_context_codes(directory)
        self.rules = TurnRules.for_model(self.model, self.tokenizer, codebook, titles)
        self.catalog, self.max_new_tokens = Catalog(codebook, titles), max_new_tokens

    def reply(self, messages: list[dict], items: list[str]) -> Reply:
        from gencrs.data.records import context_item_codes
        from gencrs.decoding.generate import chat_prompts, generate_turns

        codes = context_item_codes(items, self.catalog.codebook, self.context_codes)
        prompt = chat_prompts(self.tokenizer, [messages], item_codes=[codes])
        return parse_reply(generate_turns(self.model, self.tokenizer, self.rules, prompt, self.max_new_tokens)[0],
                           self.catalog)


class ServedModel:
    """A `gencrs serve` endpoint through the openai client; the directory gives its catalog."""

    def __init__(self, directory: str, url: str, api_key: str | None, name: str | None, max_new_tokens: int):
        from openai import OpenAI  # the serve extra

        self.client = OpenAI(base_url=url, api_key=api_key or "none")
        self.name, self.catalog = name or Path(directory).name, Catalog.load(directory)
        self.max_new_tokens = max_new_tokens

    def reply(self, messages: list[dict], items: list[str]) -> Reply:
        return recommend(self.client, self.name, messages, self.catalog, context_items=items,
                         max_tokens=self.max_new_tokens)


def show(reply: Reply, as_json: bool) -> str:
    if as_json:
        return json.dumps({k: v for k, v in asdict(reply).items() if k != "text"}, ensure_ascii=False)
    lines = [f"gencrs [{reply.intent or '?'}] {reply.response}"]
    lines += [f"    {item_id}  {title}" for item_id, title in reply.items]
    return "\n".join(lines)


def chat(cfg: ChatConfig, lines=None, out=None) -> None:
    lines, out = lines or sys.stdin, out or sys.stdout
    model = (ServedModel(cfg.model, cfg.url, cfg.api_key, cfg.served_model_name, cfg.max_new_tokens) if cfg.url
             else LocalModel(cfg.model, cfg.max_new_tokens))
    interactive = lines.isatty()
    messages, items = [], []  # the conversation and the items it has mentioned, in order
    try:
        while True:
            if interactive:
                print("you> ", end="", file=out, flush=True)
            line = lines.readline()
            if not line:
                break
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line.strip()})
            reply = model.reply(messages, items)
            messages.append({"role": "assistant", "content": reply.response})  # the context as training renders it
            items += [item for item, _ in reply.items if item not in items]
            print(show(reply, cfg.json), file=out, flush=True)
    except KeyboardInterrupt:
        print(file=out)
