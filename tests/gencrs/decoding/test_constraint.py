import torch

from gencrs.decoding import Phase, TurnConstraint
from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext.trie import Trie

# a hand-made vocabulary: 0 eos, 1-9 format tokens, 10-19 words, 20-25 code tokens
FORMAT = {t: 1 + n for n, t in enumerate(SPECIAL_TOKENS)}
REC, DISCUSS, ELICIT, CHAT = (FORMAT[t] for t in SPECIAL_TOKENS[:4])
T_OPEN, T_CLOSE, R_OPEN, I_OPEN, I_CLOSE = (FORMAT[t] for t in SPECIAL_TOKENS[4:])
ITEMS = {"x": [20, 22], "y": [20, 23], "z": [21, 24]}
V = 26


def constraint(max_items=2):
    return TurnConstraint(Trie(ITEMS), FORMAT, list(range(20, 26)), eos_token_id=0, vocab_size=V, max_items=max_items,
                          banned_in_response=[10])  # 10 plays a chat special token (e.g. bos)


def allowed(c, state):
    return [torch.nonzero(row).flatten().tolist() for row in c.mask(state)]


def run(c, tokens, state=None):
    state = state or c.start(1)
    for t in tokens:
        state = c.advance(state, torch.tensor([t]))
    return state


def test_turn_walks_intent_target_response():
    c = constraint()
    assert allowed(c, c.start(1)) == [[REC, DISCUSS, ELICIT, CHAT]]
    s = run(c, [REC])
    assert allowed(c, s) == [[T_OPEN]]
    s = run(c, [REC, T_OPEN])
    assert allowed(c, s) == [[20, 21]]  # recommend: at least one item, so no close yet
    s = run(c, [REC, T_OPEN, 20])
    assert allowed(c, s) == [[22, 23]]
    s = run(c, [REC, T_OPEN, 20, 23])
    assert int(s.items[0]) == 1 and allowed(c, s) == [[T_CLOSE, 20, 21]]  # another item or close
    s = run(c, [REC, T_OPEN, 20, 23, 21, 24])
    assert allowed(c, s) == [[T_CLOSE]]  # max_items reached
    s = run(c, [REC, T_OPEN, 20, 23, T_CLOSE])
    assert allowed(c, s) == [[R_OPEN]]
    s = run(c, [REC, T_OPEN, 20, 23, T_CLOSE, R_OPEN])
    response = set(allowed(c, s)[0])
    assert {0, I_OPEN, I_CLOSE, 11, 19} <= response
    assert not response & ({10, REC, T_OPEN, T_CLOSE, R_OPEN} | set(range(20, 26)))
    assert int(run(c, [0], s).phase[0]) == Phase.DONE


def test_other_intents_have_an_empty_target():
    c = constraint()
    for intent in (DISCUSS, ELICIT, CHAT):
        assert allowed(c, run(c, [intent, T_OPEN])) == [[T_CLOSE]]


def test_forbidden_token_ends_the_row_and_batch_rows_are_independent():
    c = constraint()
    state = c.start(3)
    for tokens in ([REC, CHAT, 15], [T_OPEN, T_OPEN, 15], [21, T_CLOSE, 15]):
        state = c.advance(state, torch.tensor(tokens))
    assert state.phase.tolist() == [Phase.TARGET, Phase.OPEN_RESPONSE, Phase.DONE]
    assert allowed(c, state) == [[24], [R_OPEN], [0]]


def test_start_inside_target_for_ranking():
    c = constraint(max_items=1)
    s = c.start(2, Phase.TARGET, recommend=True)
    assert allowed(c, s) == [[20, 21], [20, 21]]
    s = c.advance(c.advance(s, torch.tensor([21, 20])), torch.tensor([24, 22]))
    assert allowed(c, s) == [[T_CLOSE], [T_CLOSE]] and s.items.tolist() == [1, 1]
