"""Serving throughput with and without the catalog constraint, on one server build, side by side.

    python benchmarks/serving.py model=runs/export/student_synthetic [dataset=synthetic requests=48 rounds=3]

Starts `gencrs serve` on 127.0.0.1 (or uses a running server: url=http://127.0.0.1:8000/v1 served_model=NAME),
then for concurrency 1 and 16 sends the same real validation contexts with the constraint on and off
(`vllm_xargs.gencrs_constrain`), alternating the two in each round, and reports requests/s, completion tokens/s and
their ratios constrained / unconstrained (medians over rounds). Sampling is greedy so both variants decode the
same kind of turns; tokens/s is the fair number when the constraint changes how long the turns are.
"""

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

from gencrs.config import load_config


@dataclass
class ServerTarget:
    """The server a serving benchmark talks to, and the contexts it sends (benchmarks/load_test.py shares it)."""
    model: str = "runs/export/student_synthetic"  # an exported model directory (recipes/export.py)
    url: str | None = None  # a running server instead of starting one
    served_model: str | None = None  # its model name (default: the export directory's name)
    api_key: str = "bench"
    dataset: str = "synthetic"
    data_dir: str | None = None
    split: str = "valid"
    max_tokens: int = 64
    vllm_args: list[str] = field(default_factory=list)  # extra server arguments, e.g. ['--max-num-seqs','64']
    port: int = 0  # 0 = a free port
    out: str | None = None  # also write the result as JSON here


@dataclass
class ServingBenchConfig(ServerTarget):
    requests: int = 48  # per variant, concurrency and round
    concurrency: list[int] = field(default_factory=lambda: [1, 16])
    rounds: int = 3


def conversations(cfg: ServerTarget) -> list[list[dict]]:
    from gencrs.data import build_examples, load_dataset
    from gencrs.format import prompt_messages

    examples = build_examples(load_dataset(cfg.dataset, data_dir=cfg.data_dir), cfg.split)
    return [prompt_messages(e.context) for e in examples]


async def run_batch(client, model: str, batch: list[list[dict]], concurrency: int, constrain: bool, max_tokens: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(messages):
        nonlocal tokens
        async with gate:
            reply = await client.chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                extra_body={"skip_special_tokens": False, "vllm_xargs": {"gencrs_constrain": constrain}})
            tokens += reply.usage.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in batch))
    seconds = time.perf_counter() - start
    return {"requests_per_s": len(batch) / seconds, "tokens_per_s": tokens / seconds, "tokens": tokens}


async def bench(cfg: ServingBenchConfig, base_url: str, model: str) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=cfg.api_key, max_retries=0, timeout=600)
    pool = conversations(cfg)
    batch = [pool[n % len(pool)] for n in range(cfg.requests)]
    await run_batch(client, model, batch[:4], 4, True, cfg.max_tokens)  # warm-up
    result = {}
    for concurrency in cfg.concurrency:
        runs = {True: [], False: []}
        for round_ in range(cfg.rounds):
            for constrain in ((True, False) if round_ % 2 == 0 else (False, True)):
                runs[constrain].append(await run_batch(client, model, batch, concurrency, constrain, cfg.max_tokens))
        row = {}
        for constrain, name in ((True, "constrained"), (False, "unconstrained")):
            for metric in ("requests_per_s", "tokens_per_s"):
                row[f"{name}_{metric}"] = round(statistics.median(r[metric] for r in runs[constrain]), 2)
        row["ratio_requests_per_s"] = round(row["constrained_requests_per_s"] / row["unconstrained_requests_per_s"], 3)
        row["ratio_tokens_per_s"] = round(row["constrained_tokens_per_s"] / row["unconstrained_tokens_per_s"], 3)
        result[f"concurrency_{concurrency}"] = row
        print(f"concurrency {concurrency}: {json.dumps(row)}", flush=True)
    return result


def run_on_server(cfg: ServerTarget, job, default_out: str) -> dict:
    """`await job(base_url, model)` against `cfg.url`, or against a `gencrs serve` started (and stopped) here; the
    result is written to `cfg.out` when given."""
    from pathlib import Path

    from gencrs.io import atomic_write_json
    from gencrs.serving.server import Server, free_port

    if cfg.url:
        result = asyncio.run(job(cfg.url, cfg.served_model or Path(cfg.model).name))
    else:
        with Server(cfg.model, port=cfg.port or free_port(), api_key=cfg.api_key, served_model_name=cfg.served_model,
                    extra=cfg.vllm_args, log_path=Path(cfg.out or default_out).with_suffix(".server.log")) as server:
            result = asyncio.run(job(server.base_url, server.model))
    if cfg.out:
        atomic_write_json(Path(cfg.out), result)
    return result


def main(cfg: ServingBenchConfig) -> dict:
    setup = {"requests": cfg.requests, "rounds": cfg.rounds, "max_tokens": cfg.max_tokens, "dataset": cfg.dataset,
             "split": cfg.split}

    async def job(base_url: str, model: str) -> dict:
        return {"setup": setup, **await bench(cfg, base_url, model)}

    return run_on_server(cfg, job, "runs/bench_serving.json")


if __name__ == "__main__":
    print(json.dumps(main(load_config(ServingBenchConfig, sys.argv[1:])), indent=2))
