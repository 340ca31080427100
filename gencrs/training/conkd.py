"""The ConKD objective: per completion token t, a gate lambda_t from the dialogue teacher's item-token mass decides
which teacher the student distils from,

    L_t = (1 - lambda_t) * [(1 - gamma) * NLL_t + gamma * KD_dialogue_t] + lambda_t * [(1 - gamma) * NLL_t + gamma * KD_rec_t]

    hard gate: lambda_t = 1[mass_t >= eta]     soft gate: lambda_t = mass_t     no gate: lambda_t = 0

- NLL_t = -log p_student(gold_t).
- KD_dialogue_t = -sum_k q_k log p_student(k) over the dialogue teacher's top-k tokens, q renormalised over those k
  (the cross-entropy form of KL(q || p_student); the two differ by q's entropy, which has no gradient).
- KD_rec_t = -sum_c r_c log p_student(c) over the code tokens of the level of gold_t, r the recommendation teacher's
  code distribution along the trie given the gold prefix (gencrs.teachers.outputs.code_distributions). At positions
  whose gold token is not a code token the recommendation teacher has nothing to say and KD_rec_t = NLL_t.
  With a temperature T (`rec_temperature`), r is replaced by r^(1/T) renormalised: T < 1 sharpens it towards the rec
  teacher's top codes, T > 1 flattens it; T = 1 leaves it as it is. (r is a marginal over items, cached once, so the
  temperature applies to the code distribution, not to the teacher's item scores.)

gamma = 0 is plain SFT whatever the gate. The loss is averaged over completion tokens by the trainer.
"""

from dataclasses import dataclass

import torch

from tokenizer_ext.codebook import code_token


@dataclass
class TeacherTargets:
    """Teacher outputs at the N completion positions of a batch, flattened in row-major order."""

    mass: torch.Tensor  # (N,) dialogue teacher's probability mass on code tokens
    topk_ids: torch.Tensor  # (N, k) dialogue teacher's top-k token ids
    topk_probs: torch.Tensor  # (N, k) and their probabilities
    rec: torch.Tensor  # (M, K) rec teacher's code distributions, one per code position (M = number of code positions)


def gate_values(mass: torch.Tensor, gate: str, eta: float) -> torch.Tensor:
    if gate == "hard":
        return (mass >= eta).float()
    if gate == "soft":
        return mass.float().clamp(0, 1)
    if gate == "none":
        return torch.zeros_like(mass, dtype=torch.float)
    raise ValueError(f"gate must be hard, soft or none, not {gate!r}")


def conkd_loss(logits: torch.Tensor, gold: torch.Tensor, teacher: TeacherTargets | None, level_token_ids: torch.Tensor,
               token_level: torch.Tensor, gamma: float, gate: str, eta: float,
               rec_temperature: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Per-token ConKD loss.

    logits (N, V) and gold (N,) at the completion positions; level_token_ids (L, K): the vocabulary ids of each
    level's K code tokens; token_level (V,): the level of a code token id, -1 for every other token.
    Returns the loss per position (N,) and its parts (each (N,)) for logging.
    """
    log_probs = logits.float().log_softmax(-1)
    nll = -log_probs.gather(1, gold[:, None]).squeeze(1)
    if gamma == 0 or teacher is None:
        zero = torch.zeros_like(nll)
        return nll, {"nll": nll.detach(), "kd_dialogue": zero, "kd_rec": zero, "gate": zero}
    q = teacher.topk_probs.float()
    q = q / q.sum(-1, keepdim=True).clamp(min=1e-12)
    kd_dialogue = -(q * log_probs.gather(1, teacher.topk_ids)).sum(-1)
    levels = token_level[gold]
    is_code = levels >= 0
    if int(is_code.sum()) != len(teacher.rec):
        raise ValueError(f"{int(is_code.sum())} code positions in the batch but {len(teacher.rec)} recommendation-teacher "
                         "distributions: teacher outputs and training records disagree (rebuild the teacher cache)")
    kd_rec = nll.clone()
    if len(teacher.rec):
        code_log_probs = log_probs[is_code].gather(1, level_token_ids[levels[is_code]])  # (M, K)
        kd_rec[is_code] = -(tempered(teacher.rec.float(), rec_temperature) * code_log_probs).sum(-1)
    lam = gate_values(teacher.mass, gate, eta)
    per_token = (1 - gamma) * nll + gamma * ((1 - lam) * kd_dialogue + lam * kd_rec)
    return per_token, {"nll": nll.detach(), "kd_dialogue": kd_dialogue.detach(), "kd_rec": kd_rec.detach(),
                       "gate": lam.detach()}


def tempered(dist: torch.Tensor, temperature: float) -> torch.Tensor:
    """Rows of `dist` raised to 1/temperature and renormalised (a zero stays zero)."""
    if temperature == 1.0:
        return dist
    powered = dist.pow(1.0 / temperature)
    return powered / powered.sum(-1, keepdim=True).clamp(min=1e-30)


def code_token_tables(tokenizer, codebook) -> tuple[torch.Tensor, torch.Tensor]:
    """level_token_ids (L, K) and token_level (V,) for conkd_loss."""
    level_token_ids = torch.tensor([tokenizer.convert_tokens_to_ids([code_token(level, code)
                                                                     for code in range(codebook.codes_per_level)])
                                    for level in range(codebook.levels)])
    token_level = torch.full((len(tokenizer),), -1, dtype=torch.long)
    for level, ids in enumerate(level_token_ids):
        token_level[ids] = level
    return level_token_ids, token_level

