"""The one config system: a dataclass per recipe, filled from YAML (`--config FILE`) and `key=value` overrides.

    python recipes/X.py --config recipes/configs/NAME.yaml lr=1e-4 model.layers=8
    gencrs data stats dataset=DIR --lenient          # a true/false option as a flag: --lenient is lenient=true

Later sources win: dataclass defaults < YAML file < command line. Unknown keys and bad values are one-line errors.
"""

import dataclasses
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gencrs.errors import GencrsError


def load_config(cls, argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    config_file, overrides = None, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            print(usage(cls))
            sys.exit(0)
        if arg == "--config":
            if i + 1 >= len(argv):
                raise GencrsError("--config needs a YAML file")
            config_file, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config_file = arg.split("=", 1)[1]
        elif "=" in arg:
            overrides.append(arg.removeprefix("--"))
        elif arg.startswith("--") and _is_flag(cls, arg[2:]):
            overrides.append(f"{arg[2:]}=true")  # --lenient is lenient=true
        else:
            raise GencrsError(f"unexpected argument '{arg}' (use --config FILE and key=value overrides)")
        i += 1
    try:
        merged = OmegaConf.structured(cls)
        if config_file:
            if not Path(config_file).exists():
                raise GencrsError(f"config file {config_file} not found")
            merged = OmegaConf.merge(merged, OmegaConf.load(config_file))
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(overrides))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise GencrsError(f"bad config: {str(e).splitlines()[0]}") from None


def _is_flag(cls, name: str) -> bool:
    return any(f.name == name and f.type in (bool, "bool") for f in dataclasses.fields(cls))


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def usage(cls) -> str:
    lines = [f"options of {cls.__name__} (override with key=value; --config FILE.yaml for a file):"]
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else "???")
        lines.append(f"  {f.name}={default}")
    return "\n".join(lines)
