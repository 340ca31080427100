"""`gencrs chat`: user lines piped in, one constrained turn out per line, exit 0 at the end of input; on a trained
tiny model run by transformers and, with url=, on the real vLLM server."""

import json
import subprocess
import sys

import pytest

from gencrs.model_dir import read_titles

LINES = "Hi! I love horror movies. Any ideas?\nSomething older, maybe from the eighties?\nThanks, I will watch that.\n"


def chat(*options):
    return subprocess.run([sys.executable, "-m", "gencrs", "chat", *options], input=LINES, capture_output=True,
                          text=True, timeout=900)


def check_turns(result, catalog: dict[str, str]):
    assert result.returncode == 0, result.stderr[-2000:]
    turns = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(turns) == 3  # one turn per user line
    for turn in turns:
        assert turn["intent"] in ("recommend", "elicit", "discuss", "chat") and turn["invalid_targets"] == 0
        assert all(catalog[item] == title for item, title in turn["items"])  # catalog items, with their titles
        assert set(turn["response_titles"]) <= {title for _, title in turn["items"]}  # names only the chosen ones
    return turns


def test_chat_with_a_trained_model(served_export):
    catalog = read_titles(served_export)
    turns = check_turns(chat(f"model={served_export}", "json=true"), catalog)
    assert any(turn["items"] for turn in turns)  # it recommends something in the conversation
    text = chat(f"model={served_export}")  # the human-readable form: one block per turn
    assert text.returncode == 0 and text.stdout.count("gencrs [") == 3, text.stderr[-2000:]


@pytest.mark.serving
def test_chat_with_a_running_server(server):
    result = chat(f"model={server['export']}", f"url={server['base_url']}", f"api_key={server['api_key']}",
                  f"served_model_name={server['model']}", "json=true")
    check_turns(result, read_titles(server["export"]))


def test_a_missing_model_is_one_line():
    result = subprocess.run([sys.executable, "-m", "gencrs", "chat", "model=/no/such/model"], input="hi\n",
                            capture_output=True, text=True)
    assert result.returncode == 1 and "is not a model directory" in result.stderr.splitlines()[-1]
