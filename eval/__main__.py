"""python -m eval run --model DIR|baseline:popularity --dataset redial --split test --protocol unicrs [--generate ...]
   python -m eval compare RUN_A RUN_B [--k 1] [--labels all|new|repeated]   (paired: exact McNemar test on Recall@k hits)
   python -m eval compare RUN_A RUN_B --turns [--k 1]   (the same on generated turns: a target among the first k named)"""

import argparse
import dataclasses
import json
import logging
import sys

from gencrs.errors import GencrsError
from eval.protocols import LABEL_KINDS, PROTOCOLS
from eval.run import EvalConfig, evaluate


def main(argv=None) -> int:
    from gencrs.data import DATASETS

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m eval", description="offline batch evaluation")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="rank (and optionally generate) on a split; write metrics, predictions, report")
    defaults = EvalConfig()
    run.add_argument("--model", required=True, help="model directory (with codes.json) or baseline:popularity|baseline:cooccurrence")
    run.add_argument("--dataset", default=defaults.dataset, help=f"one of {', '.join(DATASETS)}")
    run.add_argument("--split", default=defaults.split)
    run.add_argument("--protocol", default=defaults.protocol, help=f"one of {', '.join(PROTOCOLS)} (eval/README.md)")
    run.add_argument("--data-dir")
    run.add_argument("--out")
    run.add_argument("--k", type=int, default=defaults.k)
    run.add_argument("--batch-size", type=int, default=defaults.batch_size)
    run.add_argument("--generate", action="store_true")
    run.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    run.add_argument("--limit", type=int)
    run.add_argument("--backend", default=defaults.backend, choices=["hf", "vllm"],
                     help="how a generative model runs: transformers, or vllm.LLM on an exported directory")
    pair = commands.add_parser("compare", help="paired comparison of two runs' Recall@k or turn hits (exact McNemar test)")
    pair.add_argument("run_a", help="an `eval run` output directory")
    pair.add_argument("run_b", help="another, over the same dataset, split, protocol and limit")
    pair.add_argument("--k", type=int, default=1)
    pair.add_argument("--labels", choices=["all", *LABEL_KINDS],
                      help="compare on every instance (default), or only on labels the context has not / has already mentioned")
    pair.add_argument("--turns", action="store_true",
                      help="compare the generated turns (runs made with --generate): is a target among the first k "
                           "items the response names, on each turn with targets")
    args = parser.parse_args(argv)
    try:
        if args.command == "compare" and args.turns:
            if args.labels:
                raise GencrsError("--labels splits ranking instances; it does not apply to --turns")
            from eval.compare import compare_turns
            result = compare_turns(args.run_a, args.run_b, args.k)
        elif args.command == "compare":
            from eval.compare import compare
            result = compare(args.run_a, args.run_b, args.k, args.labels or "all")
        else:
            result = evaluate(EvalConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(EvalConfig)}))
    except (GencrsError, ValueError, OSError) as e:
        print(f"eval: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
