"""`gencrs` command line. Library errors become one line on stderr and exit code 1."""

import argparse
import json
import logging
import sys

from gencrs.errors import GencrsError


def cmd_data_stats(args) -> None:
    from gencrs.data import load_dataset
    from gencrs.data.stats import dataset_stats, format_stats

    stats = dataset_stats(load_dataset(args.dataset, data_dir=args.data_dir, strict=not args.lenient))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))


def cmd_data_examples(args) -> None:
    import dataclasses

    from gencrs.data import build_examples, load_dataset

    dataset = load_dataset(args.dataset, data_dir=args.data_dir, strict=not args.lenient)
    if args.split not in dataset.splits:
        raise GencrsError(f"{dataset.name} has no split '{args.split}' (it has {', '.join(dataset.splits)})")
    for example in build_examples(dataset, args.split)[: args.n]:
        print(json.dumps(dataclasses.asdict(example), ensure_ascii=False))


def cmd_gate_stats(args) -> None:
    from gencrs.data import load_dataset
    from gencrs.teachers.dialogue import gate_statistics
    from gencrs.training.model import load_trained
    from gencrs.training.records import sft_records

    model, tokenizer, codebook = load_trained(args.model)
    records = sft_records(load_dataset(args.dataset, data_dir=args.data_dir), args.split, codebook, tokenizer, args.max_length)
    print(json.dumps(gate_statistics(model, tokenizer, codebook, records[: args.limit] if args.limit else records), indent=2))


def cmd_serve(args) -> None:
    from gencrs.serving.server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        logging.getLogger("gencrs").warning("serving on %s without --api-key: anyone who reaches the port can use it", args.host)
    serve(args.model, host=args.host, port=args.port, api_key=args.api_key, served_model_name=args.served_model_name,
          extra=args.vllm_args[1:] if args.vllm_args[:1] == ["--"] else args.vllm_args)


def build_parser() -> argparse.ArgumentParser:
    from gencrs.data import DATASETS

    parser = argparse.ArgumentParser(prog="gencrs", description="generative conversational recommender")
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    stats = data.add_parser("stats", help="dialogues, turns, items, examples, intent mix per split")
    examples = data.add_parser("examples", help="print training examples (one per assistant turn) as JSON lines")
    for sub in (stats, examples):
        sub.add_argument("--dataset", required=True, choices=DATASETS)
        sub.add_argument("--data-dir", help="dataset root (default: $GENCRS_DATA_DIR, else ./data)")
        sub.add_argument("--lenient", action="store_true", help="skip malformed records (counted and reported) instead of failing")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_data_stats)
    examples.add_argument("--split", default="train")
    examples.add_argument("-n", type=int, default=5, help="how many examples")
    examples.set_defaults(func=cmd_data_examples)
    teachers = commands.add_parser("teachers", help="teacher tools").add_subparsers(dest="teachers_command", required=True)
    gate = teachers.add_parser("gate-stats", help="dialogue teacher's item-token mass inside target spans vs in responses")
    gate.add_argument("--model", required=True, help="dialogue teacher directory (adapter or full model)")
    gate.add_argument("--dataset", required=True, choices=DATASETS)
    gate.add_argument("--split", default="valid")
    gate.add_argument("--data-dir")
    gate.add_argument("--max-length", type=int, default=512)
    gate.add_argument("--limit", type=int)
    gate.set_defaults(func=cmd_gate_stats)
    serve = commands.add_parser("serve", help="vLLM's OpenAI-compatible server on an exported model, constrained to the catalog",
                                description="Starts python -m vllm.entrypoints.openai.api_server with the gencrs logits "
                                            "processor. Arguments after -- go to vLLM unchanged (e.g. -- --max-model-len 512).")
    serve.add_argument("--model", required=True, help="an exported model directory (recipes/export.py)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", help="clients must send this key (Authorization: Bearer KEY)")
    serve.add_argument("--served-model-name", help="the model name clients request (default: the directory's name)")
    serve.add_argument("vllm_args", nargs=argparse.REMAINDER, help="-- then arguments passed to vLLM")
    serve.set_defaults(func=cmd_serve)
    return parser


def run_recipe(name: str, config_cls, job, argv: list[str] | None = None) -> int:
    """The error boundary of a recipe: config from YAML + key=value, the job, a one-line error and exit 1 on failure,
    the job's result printed as JSON."""
    from gencrs.config import load_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = job(load_config(config_cls, argv))
    except (GencrsError, ValueError) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except GencrsError as e:
        print(f"gencrs: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
