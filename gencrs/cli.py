"""The one command-line style: every entry point takes `key=value` options (and `--config FILE.yaml`, `--help`),
filled into a dataclass by gencrs.config. Recipes are one job each (`run_recipe`); `gencrs` and `python -m eval` name
a command first (`run_commands`):

    gencrs data stats dataset=redial [json=true]
    gencrs data examples dataset=synthetic split=train n=5
    gencrs data export dataset=redial out=DIR [--lenient]       (the own-data format, docs/data.md)
    gencrs teachers gate-stats model=runs/dialogue_teacher_synthetic/model dataset=synthetic
    gencrs serve model=runs/export/student_synthetic [port=8000 api_key=KEY] [-- VLLM_ARGS...]
    gencrs chat model=runs/student_synthetic/model [url=http://127.0.0.1:8000/v1 api_key=KEY] [json=true]

Library errors become one line on stderr and exit code 1; a job's result is printed as JSON.
"""

import json
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gencrs.chat import ChatConfig, chat
from gencrs.config import load_config
from gencrs.data import load_dataset
from gencrs.errors import USER_ERRORS, GencrsError

log = logging.getLogger("gencrs")


def run_recipe(name: str, config_cls, job, argv: list[str] | None = None) -> int:
    """The error boundary of an entry point: config from YAML + key=value, the job, a one-line error and exit 1 on
    failure, the job's result printed as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # On CPUs with AVX512-BF16, bitsandbytes' CPU backend tries at import to fetch a 4-bit kernel from the Hugging Face
    # hub (the `kernels` package) and warns when it cannot; it then uses its own kernel, so the warning says nothing.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        result = job(load_config(config_cls, argv))
    except USER_ERRORS as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


class Stages:
    """A long job's stages: each logs what it starts and how long it took; `table()` lists them with the total."""

    def __init__(self, logger: logging.Logger):
        self.log, self.start, self.seconds = logger, time.monotonic(), {}

    @contextmanager
    def __call__(self, name: str):
        self.log.info("stage %s: started", name)
        start = time.monotonic()
        yield
        self.seconds[name] = time.monotonic() - start
        self.log.info("stage %s: done in %.0f s", name, self.seconds[name])

    def table(self) -> str:
        rows = [f"| {name} | {seconds:.0f} |" for name, seconds in self.seconds.items()]
        total = time.monotonic() - self.start
        return "\n".join(["| stage | seconds |", "|---|---|", *rows, f"| total | {total:.0f} ({total / 60:.1f} min) |"]) + "\n"


def run_commands(prog: str, commands: dict, argv: list[str] | None = None) -> int:
    """`prog COMMAND... key=value...`: `commands` maps a command's words ("data stats") to (config class, job, help).
    Arguments after `--` go to a config's `passthrough` field unchanged."""
    argv = sys.argv[1:] if argv is None else list(argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    words = []
    for n, arg in enumerate(argv):
        if "=" not in arg and not arg.startswith("-") and (n == 0 or argv[n - 1] != "--config"):
            words.append(arg)
    name = " ".join(words)
    if name not in commands:
        listing = "\n".join(f"  {prog} {command:<20} {help_}" for command, (_, _, help_) in commands.items())
        if argv in ([], ["-h"], ["--help"]):
            print(f"usage: {prog} COMMAND [key=value ...] [--config FILE.yaml] [--help]\n{listing}")
            return 0
        print(f"{prog}: error: unknown command '{name}'; one of:\n{listing}", file=sys.stderr)
        return 2
    config_cls, job, _ = commands[name]
    options = [arg for arg in argv if arg not in words]
    if passthrough:
        options.append(f"passthrough=[{','.join(json.dumps(a) for a in passthrough)}]")
    return run_recipe(f"{prog} {name}", config_cls, job, options)


@dataclass
class DataConfig:
    dataset: str = "synthetic"  # one of gencrs.data.DATASETS, or a dataset directory (docs/data.md, "Your own data")
    data_dir: str | None = None  # dataset root (default: $GENCRS_DATA_DIR, else ./data)
    lenient: bool = False  # skip malformed records (counted and reported) instead of failing (--lenient)
    json: bool = False  # stats: print JSON instead of a table
    split: str = "train"  # examples: which split
    n: int = 5  # examples: how many
    out: str | None = None  # export: the directory to write


def load(cfg: DataConfig):
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, strict=not cfg.lenient)


def data_stats(cfg: DataConfig) -> None:
    from gencrs.data.stats import dataset_stats, format_stats

    stats = dataset_stats(load(cfg))
    print(json.dumps(stats, indent=2) if cfg.json else format_stats(stats))


def data_examples(cfg: DataConfig) -> None:
    import dataclasses

    from gencrs.data import build_examples

    dataset = load(cfg)
    if cfg.split not in dataset.splits:
        raise GencrsError(f"{dataset.name} has no split '{cfg.split}' (it has {', '.join(dataset.splits)})")
    for example in build_examples(dataset, cfg.split)[: cfg.n]:
        print(json.dumps(dataclasses.asdict(example), ensure_ascii=False))


def data_export(cfg: DataConfig) -> dict:
    from gencrs.data.files import export_dataset

    if not cfg.out:
        raise GencrsError("data export needs out=DIR")
    if Path(cfg.out).exists() and any(Path(cfg.out).iterdir()):
        raise GencrsError(f"{cfg.out} exists and is not empty; export writes a new directory (remove it first)")
    return export_dataset(load(cfg), cfg.out)


@dataclass
class GateStatsConfig:
    model: str = "???"  # dialogue teacher directory (adapter or full model)
    dataset: str = "synthetic"
    split: str = "valid"
    data_dir: str | None = None
    max_length: int = 512
    limit: int | None = None


def gate_stats(cfg: GateStatsConfig) -> dict:
    from gencrs.data.records import sft_records
    from gencrs.model import load_trained
    from gencrs.model_dir import reads_context_codes
    from gencrs.teachers.dialogue import gate_statistics

    model, tokenizer, codebook = load_trained(cfg.model)
    records = sft_records(load_dataset(cfg.dataset, data_dir=cfg.data_dir), cfg.split, codebook, tokenizer, cfg.max_length,
                          context_codes=reads_context_codes(cfg.model))
    return gate_statistics(model, tokenizer, codebook, records[: cfg.limit] if cfg.limit else records)


@dataclass
class ServeConfig:
    model: str = "???"  # an exported model directory (recipes/export.py)
    host: str = "127.0.0.1"  # bind address (127.0.0.1: this machine only)
    port: int = 8000
    api_key: str | None = None  # clients must send this key (Authorization: Bearer KEY)
    served_model_name: str | None = None  # the model name clients request (default: the directory's name)
    passthrough: list[str] = field(default_factory=list)  # arguments after -- go to vLLM (e.g. -- --max-model-len 512)


def serve(cfg: ServeConfig) -> None:
    from gencrs.serving.server import serve as serve_model

    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        log.warning("serving on %s without api_key: anyone who reaches the port can use it", cfg.host)
    serve_model(cfg.model, host=cfg.host, port=cfg.port, api_key=cfg.api_key, served_model_name=cfg.served_model_name,
                extra=cfg.passthrough)


COMMANDS = {
    "data stats": (DataConfig, data_stats, "dialogues, turns, items, examples, intent mix per split"),
    "data examples": (DataConfig, data_examples, "training examples (one per assistant turn) as JSON lines"),
    "data export": (DataConfig, data_export, "write a dataset as a directory in the own-data format (docs/data.md)"),
    "teachers gate-stats": (GateStatsConfig, gate_stats,
                            "dialogue teacher's item-token mass inside target spans vs in responses"),
    "serve": (ServeConfig, serve, "vLLM's OpenAI-compatible server on an exported model, constrained to the catalog"),
    "chat": (ChatConfig, chat, "talk to a trained or exported model (or, with url=, a running gencrs serve)"),
}


def main(argv: list[str] | None = None) -> int:
    return run_commands("gencrs", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
