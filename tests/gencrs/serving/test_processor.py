"""The vLLM logits processor on a real tiny model, driven step by step through vLLM's own BatchUpdate and
SamplingParams types. Only the engine's config object is a stand-in (a namespace with the two fields the processor
reads); the served end-to-end test needs a vLLM server."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate

from gencrs.format import parse_turn
from gencrs.serving.processor import TurnLogitsProcessor, check_options
from tokenizer_ext import CodeBook


@pytest.fixture(scope="module")
def served(student_parts):
    directory = student_parts["dialogue_teacher"]  # a full model directory with codes.json and catalog.json
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    config = SimpleNamespace(model_config=SimpleNamespace(model=directory, get_vocab_size=lambda: len(tokenizer)))
    return model, tokenizer, CodeBook.load(directory), config


def generate(served, prompts: list[str], extra_args: list[dict | None], steps: int = 40, seed: int = 0):
    """Sampling (temperature 1.5, so an untrained model would wander off the format) under the processor."""
    model, tokenizer, _, config = served
    processor = TurnLogitsProcessor(config, torch.device("cpu"), False)
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    outputs = [[] for _ in prompts]
    processor.update_state(BatchUpdate(batch_size=len(prompts), removed=[], moved=[], added=[
        (n, SamplingParams(extra_args=extra), ids, out) for n, (ids, out, extra) in enumerate(zip(prompt_ids, outputs, extra_args))]))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        logits = torch.stack([model(torch.tensor([ids + out])).logits[0, -1] for ids, out in zip(prompt_ids, outputs)])
        logits = processor.apply(logits.clone())
        tokens = torch.multinomial((logits / 1.5).softmax(-1), 1, generator=generator)[:, 0]
        for out, token in zip(outputs, tokens.tolist()):
            out.append(token)
        processor.update_state(None)
    return [tokenizer.decode(out, skip_special_tokens=False) for out in outputs]


def prompt(tokenizer, text):
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def test_constrained_turns_name_only_catalog_items_and_their_titles(served):
    model, tokenizer, codebook, config = served
    catalog = json.loads((Path(config.model_config.model) / "catalog.json").read_text())
    texts = generate(served, [prompt(tokenizer, "I love horror movies.")] * 6, [None] * 6)
    for text in texts:
        turn = parse_turn(text.split(tokenizer.eos_token)[0])
        assert turn["intent"], text
        items = codebook.items_in_text(turn["target"])
        assert all(item is not None for item in items), text  # every code sequence is a catalog item
        assert set(turn["response_titles"]) <= {catalog[i] for i in items}, text  # item spans name chosen targets


def test_item_markers_outside_a_span_and_spans_without_targets_are_banned(served):
    model, tokenizer, codebook, config = served
    processor = TurnLogitsProcessor(config, torch.device("cpu"), False)
    item = next(iter(codebook.item_codes))
    start, end = tokenizer.convert_tokens_to_ids(["<|item|>", "<|/item|>"])
    heads = {"chosen": "<|intent:recommend|><|target|>" + codebook.text(item) + "<|/target|><|response|>Try ",
             "none": "<|intent:chat|><|target|><|/target|><|response|>Hi "}
    outputs = {name: tokenizer(head, add_special_tokens=False)["input_ids"] for name, head in heads.items()}
    processor.update_state(BatchUpdate(batch_size=2, removed=[], moved=[], added=[
        (n, SamplingParams(), [], outputs[name]) for n, name in enumerate(heads)]))
    logits = processor.apply(torch.zeros(2, config.model_config.get_vocab_size()))
    assert logits[0, end] == float("-inf") and logits[0, start] == 0  # a span may open (a target was chosen)
    assert logits[1, end] == float("-inf") and logits[1, start] == float("-inf")  # no target: no span at all


def test_constraint_off_lets_the_untrained_model_write_anything(served):
    tokenizer = served[1]
    texts = generate(served, [prompt(tokenizer, "I love horror movies.")] * 6, [{"gencrs_constrain": False}] * 6)
    assert not all(parse_turn(t.split(tokenizer.eos_token)[0])["intent"] for t in texts)  # the format breaks


def test_item_subset_and_exclusion(served):
    tokenizer, codebook = served[1], served[2]
    items = sorted(codebook.item_codes)
    args = {"gencrs_items": items[:3], "gencrs_exclude": [items[0]]}
    for text in generate(served, [prompt(tokenizer, "Any movie?") + "<|intent:recommend|>"] * 4, [args] * 4, steps=12):
        chosen = codebook.items_in_text(parse_turn("<|intent:recommend|>" + text)["target"])
        assert chosen and set(chosen) <= {items[1], items[2]}, text


@pytest.mark.parametrize("extra, message", [
    ({"gencrs_constrain": "yes"}, "must be a bool"),
    ({"gencrs_items": ["nope"]}, "not a catalog item"),
    ({"gencrs_colour": 1}, "unknown vllm_xargs option"),
    ({"gencrs_items": ["m001"], "gencrs_exclude": ["m001"]}, "no catalog item"),
])
def test_bad_options_are_rejected(extra, message):
    with pytest.raises(ValueError, match=message):
        check_options(extra, {"m001": "A", "m002": "B"})


# --- one rule, three adapters: V1 (also under async scheduling), Model Runner V2, transformers -----------------------

V1_CLASS = "gencrs.serving.processor:TurnLogitsProcessor"
V2_CLASS = "gencrs.serving.processor:TurnLogitsProcessorV2"


def test_vllm_v2_loader_accepts_the_v2_class_and_refuses_the_v1_class():
    """vLLM 0.32's own loader for Model Runner V2 (the CUDA default), from the installed wheel."""
    from vllm.exceptions import VLLMValidationError
    from vllm.v1.worker.gpu.sample.logits_processor import (
        build_custom_logits_processors_params_validator,
    )
    from vllm.v1.worker.gpu.sample.logits_processor.loader import (
        _load_v2_logitsprocs_by_fqcns,
    )

    from gencrs.serving.processor import TurnLogitsProcessorV2

    assert _load_v2_logitsprocs_by_fqcns([V2_CLASS]) == [TurnLogitsProcessorV2]
    validate = build_custom_logits_processors_params_validator([V2_CLASS])
    with pytest.raises(VLLMValidationError, match="must be a bool"):  # HTTP 400 in the server
        validate(SamplingParams(extra_args={"gencrs_constrain": "yes"}))
    with pytest.raises(ValueError, match="is not a subclass"):
        _load_v2_logitsprocs_by_fqcns([V1_CLASS])


@pytest.fixture(scope="module")
def real_turns(served, synthetic):
    """60 real validation turns as (prompt ids, turn ids, request options): recommend and chat intents, titles in the
    responses, every fifth one with a prefilled target span, others restricted by gencrs_items or gencrs_exclude."""
    from gencrs.data import build_examples
    from gencrs.data.records import turn_text
    from gencrs.format import INTENT_TOKENS, TARGET_START, prompt_messages

    _, tokenizer, codebook, _ = served
    examples = build_examples(synthetic, "valid")
    recommend = [e for e in examples if e.targets][:36]
    chat = [e for e in examples if not e.targets][:24]
    assert len(recommend) == 36 and len(chat) == 24
    others = sorted(codebook.item_codes)
    turns = []
    for n, example in enumerate(recommend + chat):
        prompt = tokenizer.apply_chat_template(prompt_messages(example.context), tokenize=False, add_generation_prompt=True)
        turn = turn_text(example, codebook)
        options = {}
        if example.targets and n % 4 == 0:
            head = INTENT_TOKENS["recommend"] + TARGET_START
            prompt, turn = prompt + head, turn[len(head):]
        elif n % 4 == 1:
            options = {"gencrs_items": sorted(set(example.targets) | set(others[n:n + 6]))}
        elif n % 4 == 2:
            options = {"gencrs_exclude": [i for i in others[n:n + 4] if i not in example.targets]}
        turns.append((tokenizer(prompt, add_special_tokens=False)["input_ids"],
                      tokenizer(turn, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id], options))
    return turns


def lockstep(turns, eos):
    """Every turn padded with eos to the longest (a finished turn only writes eos)."""
    longest = max(len(t) for _, t, _ in turns)
    return [t + [eos] * (longest - len(t)) for _, t, _ in turns]


def v1_masks(config, turns, eos, placeholders: bool, device: str = "cpu") -> list[torch.Tensor]:
    """Per step, the (turns, vocab) banned mask of the V1 class; `placeholders` feeds the lists as async scheduling
    does: the newest token is -1 when update_state runs and is filled in just before sampling."""
    processor = TurnLogitsProcessor(config, torch.device(device), device != "cpu")
    streams = lockstep(turns, eos)
    outputs = [[] for _ in turns]
    processor.update_state(BatchUpdate(batch_size=len(turns), removed=[], moved=[], added=[
        (n, SamplingParams(extra_args=options), prompt, out) for n, ((prompt, _, options), out) in enumerate(zip(turns, outputs))]))
    masks = []
    for step in range(len(streams[0]) + 1):
        if step:
            for out, stream in zip(outputs, streams):
                out.append(-1 if placeholders else stream[step - 1])
            processor.update_state(None)
            for out, stream in zip(outputs, streams):
                out[-1] = stream[step - 1]
        vocab = config.model_config.get_vocab_size()
        masks.append(torch.isinf(processor.apply(torch.zeros(len(turns), vocab, device=device))).cpu())
    return masks


def test_v1_masks_under_async_scheduling_equal_the_masks_without_it(served, real_turns):
    _, tokenizer, _, config = served
    expected = v1_masks(config, real_turns, tokenizer.eos_token_id, placeholders=False)
    found = v1_masks(config, real_turns, tokenizer.eos_token_id, placeholders=True)
    for step, (a, b) in enumerate(zip(expected, found)):
        assert torch.equal(a, b), f"step {step}: {int((a != b).any(1).sum())} turns differ"


def request_states(vocab: int, max_reqs: int, max_len: int, device: str = "cpu"):
    """vLLM's own V2 request-state object. On the CPU two stand-ins for what needs an accelerator: pinned memory (UVA
    buffers fall back to plain ones, as vLLM does on platforms without it) and the Triton kernel that applies staged
    token writes (`commit` does the same writes with torch). On CUDA both are vLLM's own."""
    import vllm.v1.worker.gpu.buffer_utils as buffers
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcRequestState
    from vllm.v1.worker.gpu.states import RequestState

    def build():
        return RequestState(max_num_reqs=max_reqs, max_model_len=max_len, max_num_batched_tokens=max_len * max_reqs,
                            num_speculative_steps=0, vocab_size=vocab, device=torch.device(device),
                            use_dense_all_token_ids=device == "cpu")
    if device != "cpu":
        states = build()
        return states, LogitsProcRequestState.from_request_state(states), states.apply_staged_writes
    available = buffers.is_uva_available
    buffers.is_uva_available = lambda: False
    try:
        states = build()
    finally:
        buffers.is_uva_available = available

    def commit():
        for tensor in (states.all_token_ids, states.total_len):
            starts = [0, *tensor._staged_write_cu_lens]
            for n, (row, start) in enumerate(zip(tensor._staged_write_indices, tensor._staged_write_starts)):
                values = torch.tensor(tensor._staged_write_contents[starts[n]:starts[n + 1]], dtype=tensor.gpu.dtype)
                target = tensor.gpu[row] if tensor.gpu.dim() == 2 else tensor.gpu[row:row + 1]
                target[start:start + len(values)] = values
            tensor.clear_staged_writes()
        states.prompt_len.copy_to_uva()
        states.prefill_len.copy_to_uva()
    return states, LogitsProcRequestState.from_request_state(states), commit


def v2_masks(config, turns, eos, seed: int = 0, device: str = "cpu") -> list[torch.Tensor]:
    """Per step, the banned mask of the V2 class, rows given back in turn order; the batch is shuffled every step (V2
    reorders rows) and every request sits in a slot of vLLM's free list."""
    import numpy as np
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext

    from gencrs.serving.processor import TurnLogitsProcessorV2

    vocab = config.model_config.get_vocab_size()
    streams = lockstep(turns, eos)
    states, lp_states, commit = request_states(vocab, len(turns) + 3, max(len(p) for p, _, _ in turns) + len(streams[0]) + 1,
                                               device)
    processor = TurnLogitsProcessorV2(config, lp_states)
    slots = []
    for n, (prompt, _, options) in enumerate(turns):
        states.add_request(f"r{n}", len(prompt), prompt, 0, len(streams[n]))
        slots.append(states.req_id_to_index[f"r{n}"])
        processor.add_request(slots[-1], SamplingParams(extra_args=options))
    commit()
    processor.apply_staged_writes()
    rng = np.random.default_rng(seed)
    masks = []
    for step in range(len(streams[0]) + 1):
        order = rng.permutation(len(turns))
        fed = [streams[n][step - 1] if step else turns[n][0][-1] for n in order]
        lengths = np.array([len(turns[n][0]) + step for n in order])
        mapping = torch.tensor([slots[n] for n in order])
        ctx = LogitsContext(expanded_idx_mapping=mapping.to(device), idx_mapping=mapping.to(device),
                            idx_mapping_np=mapping.numpy(), expanded_local_pos=torch.zeros(len(turns), dtype=torch.long,
                                                                                           device=device),
                            input_ids=torch.tensor(fed, device=device), pos=torch.tensor(lengths - 1, device=device),
                            seq_lens_upper_bound_np=lengths)
        banned = torch.isinf(processor.apply(torch.zeros(len(turns), vocab, device=device), ctx)).cpu()
        masks.append(banned[np.argsort(order)])
    return masks


def hf_masks(served, turns, eos, device: str = "cpu") -> list[torch.Tensor]:
    """Per step, the banned mask of the transformers processor, one processor per turn (each has its own options)."""
    from gencrs.decoding.hf import TurnConstraintLogitsProcessor
    from gencrs.decoding.turn import TurnRules

    _, tokenizer, _, config = served
    vocab = config.model_config.get_vocab_size()
    rules = TurnRules.from_model_dir(config.model_config.model, tokenizer, device=device)
    streams = lockstep(turns, eos)
    per_turn = []
    for (prompt, _, options), stream in zip(turns, streams):
        processor = TurnConstraintLogitsProcessor(rules, len(prompt), options.get("gencrs_items"),
                                                  options.get("gencrs_exclude", ()))
        per_turn.append([torch.isinf(processor(torch.tensor([prompt + stream[:step]], device=device),
                                               torch.zeros(1, vocab, device=device)))[0].cpu()
                         for step in range(len(stream) + 1)])
    return [torch.stack(rows) for rows in zip(*per_turn)]


def test_v2_v1_and_transformers_masks_are_equal_at_every_step_of_sixty_real_turns(served, real_turns):
    _, tokenizer, _, config = served
    eos = tokenizer.eos_token_id
    v1, v2, hf = v1_masks(config, real_turns, eos, False), v2_masks(config, real_turns, eos), hf_masks(served, real_turns, eos)
    assert len(v1) == len(v2) == len(hf) > 20
    for step, (a, b, c) in enumerate(zip(v1, v2, hf)):
        assert torch.equal(a, b), f"step {step}: V2 differs from V1 in {int((a != b).any(1).sum())} turns"
        assert torch.equal(a, c), f"step {step}: transformers differs from V1 in {int((a != c).any(1).sum())} turns"
    # the masks are not trivial: the rule narrowed turns to a single allowed token (target spans, titles) many times
    vocab = config.model_config.get_vocab_size()
    forced = sum(int((m.sum(1) == vocab - 1).sum()) for m in v1)
    title_steps = sum(1 for _, t, _ in real_turns for tok in t if tok == tokenizer.convert_tokens_to_ids("<|item|>"))
    assert forced > 200 and title_steps >= 20, (forced, title_steps)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (vLLM's V2 buffers and kernels, CUDA logits)")
def test_each_processor_masks_cuda_logits_as_on_the_cpu(served, real_turns):
    _, tokenizer, _, config = served
    eos = tokenizer.eos_token_id
    cpu = v1_masks(config, real_turns[:16], eos, False)
    for name, masks in [("V1", v1_masks(config, real_turns[:16], eos, True, device="cuda")),
                        ("V2", v2_masks(config, real_turns[:16], eos, device="cuda")),
                        ("transformers", hf_masks(served, real_turns[:16], eos, device="cuda"))]:
        for step, (a, b) in enumerate(zip(cpu, masks)):
            assert torch.equal(a, b), f"{name} on CUDA, step {step}"
