"""SFTTrainer with the loss computed from the model's full logits, and the ConKD trainer built on it.

TRL's default loss path runs a fused LM head that reads `lm_head.weight`/`.bias` directly; with PEFT trainable tokens
on an untied lm_head (what gencrs needs for new token rows) that head is a wrapper without `.bias`, and its weight
would miss the trained rows anyway. So the loss here applies the model's own output layer (the wrapper included) to
the final hidden states, and only at the positions that predict a completion token: a turn is ~25 tokens of a
~400-token record, and the full (B, T, V) logits were a third of the tiny model's step and 2 GB per copy at 8B
(gencrs.model.completion_logits). The same logits are what ConKD distils into. `token_loss` is the one place a
subclass changes the objective.

Every training row carries `example_index` (its position in the run's record list) through the collator, so the
ConKD trainer can find the teachers' outputs for it.

Each trainer's own settings live on its config class and are read from `self.args`, as TRL's GKDTrainer reads
GKDConfig: `GencrsSFTConfig(SFTConfig)` adds `code_loss_weight` and `first_code_loss_weight`,
`ConKDConfig(GencrsSFTConfig)` adds gamma, gate, eta and rec_temperature, validated once when the config is made.
"""

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from gencrs.errors import GencrsError
from gencrs.model import completion_logits
from gencrs.training.conkd import TeacherTargets, code_token_tables, conkd_loss


@dataclass
class GencrsSFTConfig(SFTConfig):
    code_loss_weight: float = field(default=1.0, metadata={"help": "loss weight at positions whose gold token is a "
                                                                   "code token (the target span's semantic IDs)"})
    first_code_loss_weight: float | None = field(default=None, metadata={
        "help": "loss weight at the first level's code tokens, where most of a student's gap to its rec teacher "
                "opens (docs/experiments.md); None: code_loss_weight"})


@dataclass
class ConKDConfig(GencrsSFTConfig):
    gamma: float = field(default=0.5, metadata={"help": "weight of distillation against NLL (ConKD: 0.4-0.6); "
                                                        "0 = plain SFT, no teacher"})
    gate: str = field(default="hard", metadata={"help": "hard: lambda = 1[mass >= eta] | soft: lambda = mass | "
                                                        "none: the dialogue teacher only"})
    eta: float = field(default=0.5, metadata={"help": "hard-gate threshold on the dialogue teacher's item-token mass"})
    rec_temperature: float = field(default=1.0, metadata={
        "help": "temperature on the rec teacher's code distributions (r^(1/T) renormalised): < 1 sharpens them "
                "towards its top codes, > 1 flattens them"})

    def __post_init__(self):
        if not 0 <= self.gamma <= 1:
            raise GencrsError(f"gamma must be in [0, 1], not {self.gamma}")
        if self.gate not in ("hard", "soft", "none"):
            raise GencrsError(f"gate must be hard, soft or none, not {self.gate!r}")
        if not 0 <= self.eta <= 1:
            raise GencrsError(f"eta must be in [0, 1], not {self.eta}")
        if not self.rec_temperature > 0:
            raise GencrsError(f"rec_temperature must be above 0, not {self.rec_temperature}")
        super().__post_init__()

    @property
    def distills(self) -> bool:
        """gamma = 0 is plain SFT: no teacher is loaded or read."""
        return self.gamma > 0


class IndexedCollator(DataCollatorForLanguageModeling):
    def torch_call(self, examples):
        batch = super().torch_call(examples)
        batch["example_index"] = torch.tensor([e["example_index"] for e in examples])
        return batch


class LogitsSFTTrainer(SFTTrainer):
    """`args.code_loss_weight` scales the loss at positions whose gold token is one of `codebook`'s code tokens: the
    target span is 3 tokens of a ~25-token turn, and up-weighting it makes the model learn to read the context for it.
    `codes_only` (per train record, by example_index) marks records whose loss counts at the code tokens only (the
    student's teacher-labelled turns, gencrs.training.student.teacher_records)."""

    def __init__(self, *args, codebook, codes_only=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.codebook = codebook
        self.code_token_ids = torch.tensor(self.processing_class.convert_tokens_to_ids(codebook.all_tokens()))
        # per train record (by example_index): its loss counts at the code tokens only (gencrs.training.student)
        self.codes_only = torch.tensor(codes_only, dtype=torch.bool) if codes_only and any(codes_only) else None

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "example_index" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "example_index"]

    def completion_logits(self, model, inputs: dict, mask: torch.Tensor) -> tuple[torch.Tensor, object]:
        """Logits (N, V) at the completion positions and the model's outputs (gencrs.model.completion_logits)."""
        return completion_logits(model, inputs, mask, self.accelerator.unwrap_model(model))

    def token_loss(self, logits: torch.Tensor, gold: torch.Tensor, inputs: dict, mask: torch.Tensor) -> torch.Tensor:
        """Per-token loss (N,) from the completion positions' logits (N, V) and gold tokens (N,); `mask` (B, T-1) says
        where they are in the batch. Upcast to float32 here, on N rows only."""
        return torch.nn.functional.cross_entropy(logits.float(), gold, reduction="none")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        mask = labels[:, 1:] != -100
        gold = labels[:, 1:][mask]
        logits, outputs = self.completion_logits(model, inputs, mask)
        per_token = self.token_loss(logits, gold, inputs, mask)
        if model.training:
            weights = self.position_weights(gold, inputs["example_index"], mask)
            if weights is not None:
                per_token = per_token * weights
        count = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        loss = per_token.sum() / torch.as_tensor(count, device=per_token.device).clamp(min=1)
        return (loss, outputs) if return_outputs else loss

    def position_weights(self, gold: torch.Tensor, example_index: torch.Tensor, mask: torch.Tensor):
        """Training loss weights (N,): `code_loss_weight` where the gold token is a code token (`first_code_loss_weight`
        at the first level's when set), 0 at the other tokens of a codes-only record (they still count in the mean's
        denominator, as the cache covers every completion token); None when every weight is 1."""
        codes_only = self.codes_only[example_index.cpu()] if self.codes_only is not None else None
        if codes_only is not None and not codes_only.any():
            codes_only = None
        first_weight = self.args.first_code_loss_weight
        if self.args.code_loss_weight == 1.0 and first_weight in (None, 1.0) and codes_only is None:
            return None
        if self.code_token_ids.device != gold.device:  # moved once, not in every step
            self.code_token_ids = self.code_token_ids.to(gold.device)
        is_code = torch.isin(gold, self.code_token_ids)
        weights = torch.where(is_code, self.args.code_loss_weight, 1.0)
        if first_weight is not None:
            first_level = self.code_token_ids[:self.codebook.codes_per_level]  # all_tokens() is level-major
            weights = torch.where(torch.isin(gold, first_level), first_weight, weights)
        if codes_only is not None:
            row = torch.arange(mask.shape[0], device=mask.device)[:, None].expand_as(mask)[mask]
            weights = weights.masked_fill(codes_only.to(gold.device)[row] & ~is_code, 0.0)
        return weights


class ConKDTrainer(LogitsSFTTrainer):
    """The ConKD objective (gencrs.training.conkd) in training; evaluation reports plain NLL so that validation
    losses of SFT and ConKD runs compare. Logs the mean NLL, KD parts and gate over completion tokens, and the mean NLL
    and rec-KD over code positions only (`nll_code`, `kd_rec_code`: where the rec teacher acts, ~6% of ReDial's tokens).

    `teachers` (gencrs.teachers.outputs.CachedTeachers or OnlineTeachers) gives a batch's teacher outputs; None when
    `args.distills` is false."""

    def __init__(self, *args, teachers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, ConKDConfig):
            raise TypeError(f"ConKDTrainer needs ConKDConfig arguments, not {type(self.args).__name__}")
        if self.args.distills and teachers is None:
            raise GencrsError(f"gamma={self.args.gamma} distils from the teachers, but none were given")
        self.teachers = teachers
        self.level_token_ids, self.token_level = code_token_tables(self.processing_class, self.codebook)
        self._reset_sums()

    def _reset_sums(self):
        self._sums, self._count = defaultdict(float), 0  # over completion tokens
        self._code_sums, self._code_count = defaultdict(float), 0  # over code positions only

    def token_loss(self, logits, gold, inputs, mask):
        if not self.model.training:
            return super().token_loss(logits, gold, inputs, mask)
        teacher, args = None, self.args
        if args.distills:
            rows = self.teachers.rows(inputs["example_index"].tolist(), inputs, inputs["labels"])
            teacher = stack_rows(rows, mask.sum(1).tolist(), device=logits.device)
        device = logits.device
        if self.token_level.device != device:  # moved once, not in every step
            self.level_token_ids, self.token_level = self.level_token_ids.to(device), self.token_level.to(device)
        per_token, parts = conkd_loss(logits, gold, teacher, self.level_token_ids, self.token_level,
                                      args.gamma, args.gate, args.eta, args.rec_temperature)
        for name, values in parts.items():
            self._sums[name] += float(values.sum())
        self._count += len(gold)
        is_code = self.token_level[gold] >= 0
        for name in ("nll", "kd_rec"):
            self._code_sums[name] += float(parts[name][is_code].sum())
        self._code_count += int(is_code.sum())
        return per_token

    def log(self, logs: dict, *args, **kwargs):
        if self._count and "loss" in logs:
            logs.update({name: round(total / self._count, 4) for name, total in self._sums.items()})
            if self._code_count:
                logs.update({f"{name}_code": round(total / self._code_count, 4) for name, total in self._code_sums.items()})
            self._reset_sums()
        super().log(logs, *args, **kwargs)


def stack_rows(rows: list[dict], lengths: list[int], device) -> TeacherTargets:
    """Per-row teacher outputs -> one TeacherTargets over the batch's completion positions (row-major)."""
    for n, (row, length) in enumerate(zip(rows, lengths)):
        if len(row["mass"]) != length:
            raise ValueError(f"batch row {n}: teacher outputs cover {len(row['mass'])} completion tokens, the training "
                             f"record has {length}: the teacher cache was built with another tokenizer or max_length")
    cat = lambda key: torch.cat([r[key] for r in rows]).to(device)
    rec = [r["rec"] for r in rows if len(r["rec"])]
    return TeacherTargets(mass=cat("mass"), topk_ids=cat("topk_ids"), topk_probs=cat("topk_probs"),
                          rec=torch.cat(rec).to(device) if rec else torch.zeros(0, 1, device=device))
