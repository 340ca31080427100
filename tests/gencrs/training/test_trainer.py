"""The trainers' own settings live on their TRL config classes and are checked when the config is made."""

import pytest

from gencrs.errors import GencrsError
from gencrs.training.trainer import ConKDConfig, GencrsSFTConfig


def config(tmp_path, cls=ConKDConfig, **settings):
    return cls(output_dir=str(tmp_path), use_cpu=True, report_to=[], **settings)


@pytest.mark.parametrize("settings, message", [({"gamma": 1.5}, "gamma must be in"), ({"gamma": -0.1}, "gamma must be in"),
                                               ({"gate": "sigmoid"}, "gate must be hard, soft or none"),
                                               ({"eta": 2.0}, "eta must be in"),
                                               ({"rec_temperature": 0.0}, "rec_temperature must be above 0")])
def test_bad_conkd_settings_fail_when_the_config_is_made(tmp_path, settings, message):
    with pytest.raises(GencrsError, match=message):
        config(tmp_path, **settings)


def test_gamma_zero_is_plain_sft_and_the_settings_are_read_from_the_config(tmp_path):
    assert not config(tmp_path, gamma=0.0).distills
    args = config(tmp_path, gamma=0.7, gate="soft", eta=0.3, code_loss_weight=5.0)
    assert args.distills and (args.gamma, args.gate, args.eta, args.code_loss_weight) == (0.7, "soft", 0.3, 5.0)
    assert config(tmp_path, GencrsSFTConfig).code_loss_weight == 1.0
    assert config(tmp_path, GencrsSFTConfig).first_code_loss_weight is None


def test_the_run_config_reaches_the_trainer_config(tmp_path):
    """gamma's path: key=value -> StudentRunConfig (gencrs.config.load_config) -> ConKDConfig (training_args, by
    name) -> the trainer reads self.args.gamma."""
    from gencrs.config import load_config
    from gencrs.training.student import StudentRunConfig, conkd_args

    cfg = load_config(StudentRunConfig, [f"out={tmp_path}", "gamma=0.25", "gate=none", "eta=0.4", "code_loss_weight=3",
                                          "first_code_loss_weight=9", "rec_temperature=0.5"])
    args = conkd_args(cfg)
    assert (args.gamma, args.gate, args.eta, args.code_loss_weight, args.first_code_loss_weight) == (0.25, "none", 0.4,
                                                                                                       3.0, 9.0)
    assert args.rec_temperature == 0.5
    with pytest.raises(GencrsError, match="gamma must be in"):
        conkd_args(load_config(StudentRunConfig, [f"out={tmp_path}", "gamma=7"]))


def test_gradient_checkpointing_is_on_unless_the_run_turns_it_off(tmp_path):
    """TRL's default (on: the 8B runs need the memory) unless a config says otherwise (the tiny CPU configs)."""
    from gencrs.config import load_config
    from gencrs.training.student import StudentRunConfig, conkd_args

    assert conkd_args(load_config(StudentRunConfig, [f"out={tmp_path}"])).gradient_checkpointing
    off = load_config(StudentRunConfig, [f"out={tmp_path}", "gradient_checkpointing=false"])
    assert not conkd_args(off).gradient_checkpointing


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_completion_logits_are_the_full_logits_at_the_completion_positions(real_generative, student_values, finetune,
                                                                          tmp_path):
    """The loss applies the output layer only where a completion token is predicted; on both real bases (untied and
    tied embeddings) and both fine-tuning modes (LoRA: the PEFT trainable-token head), those logits and their
    gradients are the full forward's at the same positions."""
    import torch

    from gencrs.model import MODEL_INPUTS
    from gencrs.training.student import StudentRunConfig, build_student_trainer

    values = student_values(tmp_path / "run", base_model=real_generative["base"], gamma=0.0, finetune=finetune,
                            semantic_ids=real_generative["semantic_ids"], batch_size=2, max_length=192)
    trainer = build_student_trainer(StudentRunConfig(**values))[2]
    model = trainer.model.eval()  # no dropout (LoRA's): the two forwards must see the same function
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    mask = batch["labels"][:, 1:] != -100
    assert 0 < mask.sum() < mask.numel() / 2  # a turn is a small part of its record: the point of the fast path

    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = torch.randn(int(mask.sum()), model.get_output_embeddings().weight.shape[0])
    logits, _ = trainer.completion_logits(model, batch, mask)
    fast = torch.autograd.grad((logits.float() * weights).sum(), trainable, allow_unused=True)
    full_logits = model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS}, use_cache=False).logits[:, :-1][mask]
    full = torch.autograd.grad((full_logits.float() * weights).sum(), trainable, allow_unused=True)
    torch.testing.assert_close(logits, full_logits, rtol=1e-4, atol=1e-4)
    assert sum(g is not None for g in full) > 0
    for a, b in zip(fast, full):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
