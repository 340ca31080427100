"""The trainers' own settings live on their TRL config classes and are checked when the config is made."""

import pytest

from gencrs.errors import GencrsError
from gencrs.training.trainer import ConKDConfig, GencrsSFTConfig


def config(tmp_path, cls=ConKDConfig, **settings):
    return cls(output_dir=str(tmp_path), use_cpu=True, report_to=[], **settings)


@pytest.mark.parametrize("settings, message", [({"gamma": 1.5}, "gamma must be in"), ({"gamma": -0.1}, "gamma must be in"),
                                               ({"gate": "sigmoid"}, "gate must be hard, soft or none"),
                                               ({"eta": 2.0}, "eta must be in")])
def test_bad_conkd_settings_fail_when_the_config_is_made(tmp_path, settings, message):
    with pytest.raises(GencrsError, match=message):
        config(tmp_path, **settings)


def test_gamma_zero_is_plain_sft_and_the_settings_are_read_from_the_config(tmp_path):
    assert not config(tmp_path, gamma=0.0).distills
    args = config(tmp_path, gamma=0.7, gate="soft", eta=0.3, code_loss_weight=5.0)
    assert args.distills and (args.gamma, args.gate, args.eta, args.code_loss_weight) == (0.7, "soft", 0.3, 5.0)
    assert config(tmp_path, GencrsSFTConfig).code_loss_weight == 1.0


def test_the_run_config_reaches_the_trainer_config(tmp_path):
    """gamma's path: key=value -> StudentRunConfig (gencrs.config.load_config) -> ConKDConfig (training_args, by
    name) -> the trainer reads self.args.gamma."""
    from gencrs.config import load_config
    from gencrs.training.student import StudentRunConfig, conkd_args

    cfg = load_config(StudentRunConfig, [f"out={tmp_path}", "gamma=0.25", "gate=none", "eta=0.4", "code_loss_weight=3"])
    args = conkd_args(cfg)
    assert (args.gamma, args.gate, args.eta, args.code_loss_weight) == (0.25, "none", 0.4, 3.0)
    with pytest.raises(GencrsError, match="gamma must be in"):
        conkd_args(load_config(StudentRunConfig, [f"out={tmp_path}", "gamma=7"]))


def test_gradient_checkpointing_is_on_unless_the_run_turns_it_off(tmp_path):
    """TRL's default (on: the 8B runs need the memory) unless a config says otherwise (the tiny CPU configs)."""
    from gencrs.config import load_config
    from gencrs.training.student import StudentRunConfig, conkd_args

    assert conkd_args(load_config(StudentRunConfig, [f"out={tmp_path}"])).gradient_checkpointing
    off = load_config(StudentRunConfig, [f"out={tmp_path}", "gradient_checkpointing=false"])
    assert not conkd_args(off).gradient_checkpointing
