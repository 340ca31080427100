"""python -m tokenizer_ext build --dataset redial --out DIR [--levels 3 --codes 256 --encoder NAME ...]
   python -m tokenizer_ext extend --model BASE_DIR --codes DIR --out DIR [--dataset NAME]"""

import argparse
import dataclasses
import logging
import shutil
import sys
from pathlib import Path

from gencrs.errors import GencrsError
from tokenizer_ext.build import SemanticIdConfig, build_semantic_ids, format_summary


def add_dataclass_options(parser: argparse.ArgumentParser, cls) -> None:
    """Every config field becomes --field (underscores as dashes), with the dataclass default."""
    for f in dataclasses.fields(cls):
        kind = int if f.type in (int, "int") else str
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default)


def cmd_build(args) -> None:
    from gencrs.data import load_dataset

    cfg = SemanticIdConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SemanticIdConfig)})
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, seed=cfg.seed)
    _, stats = build_semantic_ids(list(dataset.catalog.values()), cfg)
    print(format_summary(stats))
    print(f"semantic IDs written to {cfg.out}")


def cmd_extend(args) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs.data import load_dataset
    from gencrs.io import atomic_dir
    from tokenizer_ext.codebook import CodeBook
    from tokenizer_ext.extend import extend_model, extend_tokenizer

    codebook = CodeBook.load(args.codes)
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    added = extend_tokenizer(tokenizer, codebook)
    extend_model(model, tokenizer, codebook, {i: dataset.title(i) for i in codebook.item_codes if i in dataset.catalog})
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.copy(Path(args.codes) / "codes.json", tmp / "codes.json")  # a gencrs model directory carries its code table
    print(f"added {len(added)} tokens; vocabulary {len(tokenizer)}; extended model written to {args.out}")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m tokenizer_ext", description="semantic-ID tokens for a catalog")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="embed, quantize and write the code table")
    add_dataclass_options(build, SemanticIdConfig)
    build.set_defaults(func=cmd_build)
    extend = commands.add_parser("extend", help="add format and code tokens to a tokenizer and resize its model")
    extend.add_argument("--model", required=True, help="base model directory")
    extend.add_argument("--codes", required=True, help="directory written by `build`")
    extend.add_argument("--out", required=True)
    extend.add_argument("--dataset", default="synthetic", help="dataset whose item titles initialize the code rows")
    extend.add_argument("--data-dir")
    extend.set_defaults(func=cmd_extend)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (GencrsError, ValueError) as e:
        print(f"tokenizer_ext: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
