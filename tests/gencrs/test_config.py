from dataclasses import dataclass

import pytest

from gencrs.config import load_config
from gencrs.errors import GencrsError


@dataclass
class Cfg:
    name: str = "a"
    lr: float = 1e-3
    steps: int = 10
    data_dir: str | None = None


def test_defaults_yaml_then_command_line(tmp_path):
    (tmp_path / "c.yaml").write_text("name: from_yaml\nsteps: 20\n")
    cfg = load_config(Cfg, ["--config", str(tmp_path / "c.yaml"), "steps=30", "--lr=0.5"])
    assert cfg == Cfg(name="from_yaml", lr=0.5, steps=30)
    assert load_config(Cfg, []) == Cfg()


@pytest.mark.parametrize("argv, message", [
    (["nope=1"], "bad config"),
    (["steps=ten"], "bad config"),
    (["--config", "/no/such.yaml"], "not found"),
    (["positional"], "unexpected argument"),
])
def test_bad_configs_are_one_line_errors(argv, message):
    with pytest.raises(GencrsError, match=message) as err:
        load_config(Cfg, argv)
    assert "\n" not in str(err.value)
