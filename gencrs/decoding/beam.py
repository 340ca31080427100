"""Beam search over the trie: the k most likely catalog items after a prompt, best first.

The prompt is encoded once per context; the KV cache is then expanded to the beams and reordered at each level, so a
level costs one single-token forward per beam (generic `generate(num_beams=k)` would re-encode the prompt k times).
Every candidate is a trie child, so each finished beam is a distinct catalog item. Scores, cache and inputs stay on
the model's device; the trie walk (a few integers per beam) runs on the CPU.
"""

import torch

from tokenizer_ext.trie import Trie


@torch.no_grad()
def trie_beam_search(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, trie: Trie, beams: int):
    """Returns, per prompt row, a list of (item id, log-probability) sorted by log-probability (at most `beams`).
    `input_ids` and `attention_mask` on the model's device."""
    batch, device = input_ids.shape[0], input_ids.device
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens
    # logits of the last position only: the search reads no other, and the output layer over the prompt is wasted
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                logits_to_keep=1)
    cache, logp = out.past_key_values, out.logits[:, -1].float().log_softmax(-1)
    vocab = logp.shape[-1]
    nodes = torch.zeros(batch, dtype=torch.long)  # trie states, on the CPU
    scores = torch.zeros(batch, device=device)
    mask = attention_mask
    next_position = positions[:, -1] + 1
    width = 1
    for level in range(trie.length):
        allowed = trie.mask(nodes, vocab).to(device, non_blocking=True)
        candidates = (scores[:, None] + logp.masked_fill(~allowed, float("-inf"))).view(batch, width * vocab)
        top = candidates.topk(min(beams, width * vocab), dim=-1)
        parents = (torch.arange(batch, device=device)[:, None] * width + top.indices // vocab).flatten()
        tokens = (top.indices % vocab).flatten()
        scores = top.values.flatten()
        nodes = trie.step(nodes[parents.cpu()], tokens.cpu())
        width = top.indices.shape[1]
        if level == trie.length - 1:
            break
        cache.reorder_cache(parents)
        mask = torch.cat([mask[parents], torch.ones(len(parents), 1, dtype=mask.dtype, device=device)], dim=1)
        next_position = next_position[parents]
        out = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                    past_key_values=cache, use_cache=True)
        logp = out.logits[:, -1].float().log_softmax(-1)
        next_position = next_position + 1
    results = []
    for row_scores, row_nodes in zip(scores.view(batch, width).cpu(), nodes.view(batch, width)):
        results.append([(trie.item(int(n)), float(s)) for s, n in zip(row_scores, row_nodes) if s > float("-inf")])
    return results
