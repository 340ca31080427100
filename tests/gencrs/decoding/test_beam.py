import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gencrs.decoding.beam import trie_beam_search
from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext import CodeBook, Trie
from tokenizer_ext.extend import extend_model, extend_tokenizer


def exhaustive(model, prompt_ids, sequences):
    """Log-probability of every item's code sequence, teacher-forced one by one."""
    scores = {}
    for item, seq in sequences.items():
        ids = torch.tensor([prompt_ids + seq])
        logp = model(ids).logits[0, len(prompt_ids) - 1:-1].float().log_softmax(-1)
        scores[item] = float(logp.gather(1, torch.tensor(seq)[:, None]).sum())
    return sorted(scores.items(), key=lambda kv: -kv[1])


@torch.no_grad()
def test_beam_search_with_enough_beams_is_exact_and_padding_safe(tiny_base):
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    codebook = CodeBook(2, 4, {f"i{n}": (n // 4, n % 4) for n in range(14)})
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    extend_model(model, tokenizer, codebook, {i: f"Movie {i}" for i in codebook.item_codes})
    torch.manual_seed(0)
    with torch.no_grad():  # make the new rows differ, so that the ranking is not a tie
        model.get_output_embeddings().weight[-8:] += torch.randn(8, model.config.hidden_size) * 0.5
    trie = Trie.from_codebook(codebook, tokenizer)
    token_id = dict(zip(codebook.all_tokens(), tokenizer.convert_tokens_to_ids(codebook.all_tokens())))
    sequences = {i: [token_id[t] for t in codebook.tokens(i)] for i in codebook.item_codes}
    prompts = ["<|start|>user\nI like comedy.<|end|>\n<|start|>assistant\n", "<|start|>user\nAnything scary and long please?<|end|>\n"]
    batch = tokenizer(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    found = trie_beam_search(model, batch["input_ids"], batch["attention_mask"], trie, beams=16)
    for prompt, result in zip(prompts, found):
        expected = exhaustive(model, tokenizer(prompt, add_special_tokens=False)["input_ids"], sequences)
        assert [i for i, _ in result] == [i for i, _ in expected]
        for (_, a), (_, b) in zip(result, expected):
            assert abs(a - b) < 1e-3
    top3 = trie_beam_search(model, batch["input_ids"], batch["attention_mask"], trie, beams=3)
    assert all(len(r) == 3 and len({i for i, _ in r}) == 3 for r in top3)


@pytest.mark.gpu
@torch.no_grad()
def test_beam_search_and_generation_run_on_the_models_cuda_device(real_generative, synthetic):
    from eval.generative import GenerativeRecommender
    from gencrs.data.protocols import contexts_of, select_instances
    from gencrs.model_dir import read_titles

    recommender = GenerativeRecommender.load(real_generative["model"], batch_size=4, max_new_tokens=24)
    assert recommender.model.device.type == "cuda" and recommender.model.dtype == torch.bfloat16
    contexts = contexts_of(select_instances(synthetic, "valid", "recommender", 8))
    rankings = recommender.rank(contexts, k=5)
    assert recommender.invalid_beams == 0
    assert all(len(r) == len(set(r)) == 5 and set(r) <= set(synthetic.catalog) for r in rankings)
    # the same search on CUDA as on the CPU: the model in float32 on each device ranks the same first items
    recommender.model.float()
    on_cuda = recommender.rank(contexts, k=5)
    on_cpu = GenerativeRecommender(recommender.model.cpu(), recommender.tokenizer, recommender.codebook,
                                   read_titles(real_generative["model"]), batch_size=4).rank(contexts, k=5)
    assert sum(a[0] == b[0] for a, b in zip(on_cuda, on_cpu)) >= 7, (on_cuda, on_cpu)
    turns = GenerativeRecommender.load(real_generative["model"], batch_size=4, max_new_tokens=24).generate_turns(contexts[:4])
    assert len(turns) == 4 and all(None not in t["target_items"] for t in turns)
