"""The ConKD loss against values computed by hand on a tiny batch.

Vocabulary of 6 tokens: 0-3 ordinary words, 4 and 5 the two codes of a one-level code table. Three completion
positions: position 0 is an ordinary word (gold 1), position 1 is a code (gold 5), position 2 an ordinary word (gold 0).
"""

import math

import pytest
import torch

from gencrs.training.conkd import TeacherTargets, conkd_loss, gate_values

LOGITS = torch.tensor([[2.0, 1.0, 0.0, 0.0, -1.0, -1.0],
                       [0.0, 0.0, 0.0, 0.0, 1.0, 2.0],
                       [1.0, 0.0, 0.5, 0.0, 0.0, 0.0]])
GOLD = torch.tensor([1, 5, 0])
LEVEL_TOKEN_IDS = torch.tensor([[4, 5]])
TOKEN_LEVEL = torch.tensor([-1, -1, -1, -1, 0, 0])
TEACHER = TeacherTargets(
    mass=torch.tensor([0.1, 0.8, 0.4]),
    topk_ids=torch.tensor([[0, 1], [5, 4], [0, 2]]),
    topk_probs=torch.tensor([[0.3, 0.3], [0.6, 0.2], [0.5, 0.25]]),  # renormalised: (.5,.5), (.75,.25), (2/3,1/3)
    rec=torch.tensor([[0.1, 0.9]]),  # the one code position: P(code 4) = 0.1, P(code 5) = 0.9
)


def log_p(row: int, token: int) -> float:
    logits = LOGITS[row].tolist()
    return logits[token] - math.log(sum(math.exp(v) for v in logits))


NLL = [-log_p(0, 1), -log_p(1, 5), -log_p(2, 0)]
KD_DIALOGUE = [-(0.5 * log_p(0, 0) + 0.5 * log_p(0, 1)),
               -(0.75 * log_p(1, 5) + 0.25 * log_p(1, 4)),
               -(2 / 3 * log_p(2, 0) + 1 / 3 * log_p(2, 2))]
KD_REC = [NLL[0], -(0.1 * log_p(1, 4) + 0.9 * log_p(1, 5)), NLL[2]]  # no rec teacher at non-code positions: NLL


def expected(gamma: float, lam: list[float]) -> torch.Tensor:
    return torch.tensor([(1 - l) * ((1 - gamma) * n + gamma * d) + l * ((1 - gamma) * n + gamma * r)
                         for n, d, r, l in zip(NLL, KD_DIALOGUE, KD_REC, lam)])


def run(gamma, gate, eta=0.5, teacher=TEACHER, rec_temperature=1.0):
    return conkd_loss(LOGITS, GOLD, teacher, LEVEL_TOKEN_IDS, TOKEN_LEVEL, gamma, gate, eta, rec_temperature)


def test_hard_gate_matches_hand_computation():
    loss, parts = run(0.5, "hard", eta=0.3)
    torch.testing.assert_close(loss, expected(0.5, [0.0, 1.0, 1.0]))  # mass 0.1 < 0.3 <= 0.8, 0.4
    torch.testing.assert_close(parts["gate"], torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(parts["kd_rec"], torch.tensor(KD_REC))
    loss, _ = run(0.4, "hard", eta=0.6)
    torch.testing.assert_close(loss, expected(0.4, [0.0, 1.0, 0.0]))


def test_soft_gate_matches_hand_computation():
    loss, parts = run(0.6, "soft")
    torch.testing.assert_close(loss, expected(0.6, [0.1, 0.8, 0.4]))
    torch.testing.assert_close(parts["kd_dialogue"], torch.tensor(KD_DIALOGUE))


@pytest.mark.parametrize("gate", ["hard", "soft", "none"])
def test_gamma_zero_is_nll(gate):
    loss, _ = run(0.0, gate)
    torch.testing.assert_close(loss, torch.tensor(NLL))
    torch.testing.assert_close(run(0.0, gate, teacher=None)[0], torch.tensor(NLL))


def test_no_gate_distils_from_the_dialogue_teacher_only():
    loss, _ = run(1.0, "none")
    torch.testing.assert_close(loss, torch.tensor(KD_DIALOGUE))


def test_rec_temperature_sharpens_or_flattens_the_rec_teachers_code_distribution():
    # T = 0.5: (0.1, 0.9) -> (0.01, 0.81) / 0.82; T = 2: (sqrt 0.1, sqrt 0.9) / their sum
    for temperature, (r4, r5) in [(0.5, (0.01 / 0.82, 0.81 / 0.82)),
                                  (2.0, (math.sqrt(0.1) / (math.sqrt(0.1) + math.sqrt(0.9)),
                                         math.sqrt(0.9) / (math.sqrt(0.1) + math.sqrt(0.9))))]:
        loss, parts = run(0.5, "hard", eta=0.3, rec_temperature=temperature)
        kd_rec = [NLL[0], -(r4 * log_p(1, 4) + r5 * log_p(1, 5)), NLL[2]]
        torch.testing.assert_close(parts["kd_rec"], torch.tensor(kd_rec))
        torch.testing.assert_close(parts["kd_dialogue"], torch.tensor(KD_DIALOGUE))  # the dialogue teacher as it was
        torch.testing.assert_close(loss[1], 0.5 * NLL[1] + 0.5 * torch.tensor(kd_rec[1]))
    # a code the rec teacher gives no mass keeps none at any temperature
    zero = TeacherTargets(TEACHER.mass, TEACHER.topk_ids, TEACHER.topk_probs, rec=torch.tensor([[0.0, 1.0]]))
    _, parts = run(0.5, "hard", eta=0.3, teacher=zero, rec_temperature=3.0)
    torch.testing.assert_close(parts["kd_rec"][1], torch.tensor(-log_p(1, 5)))


def test_gate_values():
    mass = torch.tensor([0.0, 0.3, 0.59, 0.6, 1.0])
    assert gate_values(mass, "hard", 0.6).tolist() == [0, 0, 0, 1, 1]
    torch.testing.assert_close(gate_values(mass, "soft", 0.6), mass)
    with pytest.raises(ValueError, match="gate must be"):
        gate_values(mass, "medium", 0.5)


def test_teacher_code_positions_must_match_the_batch():
    bad = TeacherTargets(TEACHER.mass, TEACHER.topk_ids, TEACHER.topk_probs, rec=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="1 code positions in the batch but 2"):
        run(0.5, "hard", teacher=bad)


def test_gradient_reaches_only_the_student_logits():
    logits = LOGITS.clone().requires_grad_(True)
    loss, _ = conkd_loss(logits, GOLD, TEACHER, LEVEL_TOKEN_IDS, TOKEN_LEVEL, 0.5, "soft", 0.5)
    loss.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    torch.testing.assert_close(logits.grad.sum(-1), torch.zeros(3), atol=1e-6, rtol=0)  # softmax gradients sum to 0
