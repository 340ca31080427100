"""SFTTrainer with the loss computed from the model's full logits.

TRL's default loss path runs a fused LM head that reads `lm_head.weight`/`.bias` directly; with PEFT trainable tokens
on an untied lm_head (what gencrs needs for new token rows) that head is a wrapper without `.bias`, and its weight
would miss the trained rows anyway. So the loss here is computed from `model(...).logits`, which also gives ConKD the
student logits it distils into. `token_loss` is the one place a subclass changes the objective.
"""

import torch
from trl import SFTTrainer


class LogitsSFTTrainer(SFTTrainer):
    def token_loss(self, logits: torch.Tensor, labels: torch.Tensor, inputs: dict) -> tuple[torch.Tensor, dict]:
        """Per-token loss (B, T-1) on shifted positions (zero where labels are -100), and metrics to log."""
        shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2), shift_labels.clamp(min=0), reduction="none")
        return nll * (shift_labels != -100), {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
        outputs = model(**model_inputs, use_cache=False)
        per_token, metrics = self.token_loss(outputs.logits, labels, inputs)
        count = num_items_in_batch if num_items_in_batch is not None else (labels[:, 1:] != -100).sum()
        loss = per_token.sum() / torch.as_tensor(count, device=per_token.device).clamp(min=1)
        if metrics and model.training:
            self._metrics_buffer = metrics
        return (loss, outputs) if return_outputs else loss
