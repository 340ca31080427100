"""Bounded load test: N concurrent chat requests on loopback; counts server errors and invalid items.

    python benchmarks/load_test.py model=runs/export/student_synthetic [concurrent=200 dataset=synthetic]

Starts `gencrs serve` on 127.0.0.1 (or uses url=... served_model=...), fires `concurrent` structured requests at once
(real validation contexts, sampling at temperature 1 so the turns differ), and checks every reply: the HTTP status,
every target code sequence is a catalog item, every item the response names is one of the turn's targets.
Exit code 1 when any request failed or named an invalid item.
"""

import asyncio
import json
import sys
import time
from dataclasses import dataclass

from serving import (  # benchmarks/serving.py: the same server and contexts
    ServerTarget,
    conversations,
    run_on_server,
)

from gencrs.config import load_config


@dataclass
class LoadTestConfig(ServerTarget):
    api_key: str = "load"
    concurrent: int = 200


async def fire(cfg: LoadTestConfig, base_url: str, model: str) -> dict:
    import openai

    from gencrs.client import Catalog, options, parse_reply

    catalog = Catalog.load(cfg.model)
    pool = conversations(cfg)
    client = openai.AsyncOpenAI(base_url=base_url, api_key=cfg.api_key, max_retries=0, timeout=1800)
    errors, invalid_targets, foreign_titles, items, latencies = [], 0, 0, 0, []

    async def one(n: int):
        nonlocal invalid_targets, foreign_titles, items
        start = time.perf_counter()
        try:
            reply = await client.chat.completions.create(model=model, messages=pool[n % len(pool)], max_tokens=cfg.max_tokens,
                                                         temperature=1.0, seed=n, extra_body=options())
        except openai.APIError as e:
            errors.append(f"request {n}: {type(e).__name__}: {e}")
            return
        latencies.append(time.perf_counter() - start)
        parsed = parse_reply(reply.choices[0].message.content or "", catalog)
        invalid_targets += parsed.invalid_targets
        foreign_titles += len(set(parsed.response_titles) - {title for _, title in parsed.items})
        items += len(parsed.items)

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.concurrent)))
    latencies.sort()
    return {"requests": cfg.concurrent, "errors": len(errors), "error_examples": errors[:5],
            "invalid_target_sequences": invalid_targets, "response_titles_not_in_targets": foreign_titles,
            "items_recommended": items, "seconds": round(time.perf_counter() - start, 1),
            "latency_p50_s": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "latency_max_s": round(latencies[-1], 2) if latencies else None}


def main(cfg: LoadTestConfig) -> dict:
    return run_on_server(cfg, lambda base_url, model: fire(cfg, base_url, model), "runs/load_test.json")


if __name__ == "__main__":
    result = main(load_config(LoadTestConfig, sys.argv[1:]))
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["errors"] or result["invalid_target_sequences"] or result["response_titles_not_in_targets"] else 0)
