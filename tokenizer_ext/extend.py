"""Add special tokens (the caller's format tokens, e.g. gencrs.format.SPECIAL_TOKENS) and the code tokens to a
tokenizer, and resize a model to match.

New rows are initialized so the model starts close to its old behaviour:
- input embedding of a code token = mean over the items under that code of the mean embedding of the item title's tokens
  (the token carries what its items are called); a code no item uses, and each format token, get the mean of all rows;
- output (lm_head) rows of all new tokens = the mean of the old output rows. With an untied head this bounds how much
  probability the new tokens take on ordinary text (the logit of the mean row is the mean logit), so the next-token
  distribution over the old vocabulary barely moves (measured in tests/tokenizer_ext/test_extend.py).
With tied embeddings the input rows are the output rows.
"""

import torch

from tokenizer_ext.codebook import CodeBook


def extend_tokenizer(tokenizer, codebook: CodeBook, format_tokens: tuple[str, ...] = ()) -> list[int]:
    """Adds format + code tokens as special tokens (never split; skipped by skip_special_tokens). Returns new ids."""
    before = len(tokenizer)
    new = [t for t in (*format_tokens, *codebook.all_tokens()) if t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens({"additional_special_tokens": new}, replace_extra_special_tokens=False)
    return list(range(before, len(tokenizer)))


def new_token_ids(tokenizer, codebook: CodeBook, format_tokens: tuple[str, ...] = ()) -> list[int]:
    """Ids of the format and code tokens in an extended tokenizer (what PEFT trainable_token_indices needs)."""
    return tokenizer.convert_tokens_to_ids([*format_tokens, *codebook.all_tokens()])


@torch.no_grad()
def extend_model(model, tokenizer, codebook: CodeBook, titles: dict[str, str]) -> None:
    old_vocab = model.get_input_embeddings().weight.shape[0]
    old_out = model.get_output_embeddings().weight[:old_vocab].clone() if model.get_output_embeddings() is not None else None
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embed = model.get_input_embeddings().weight
    mean_row = embed[:old_vocab].mean(0)
    embed[old_vocab:] = mean_row
    # mean title-token embedding per item, then per code token the mean over its items; on the embedding's own device
    # (a 4-bit 8B load puts it on the GPU)
    sums = torch.zeros(codebook.levels, codebook.codes_per_level, embed.shape[1], dtype=torch.float32, device=embed.device)
    counts = torch.zeros(codebook.levels, codebook.codes_per_level, device=embed.device)
    for item, codes in codebook.item_codes.items():
        ids = [i for i in tokenizer(titles.get(item, ""), add_special_tokens=False)["input_ids"] if i < old_vocab]
        if not ids:
            continue
        vec = embed[ids].float().mean(0)
        for level, code in enumerate(codes):
            sums[level, code] += vec
            counts[level, code] += 1
    ids = torch.tensor(tokenizer.convert_tokens_to_ids(codebook.all_tokens()), device=embed.device)  # level-major
    used = (counts > 0).flatten()[:, None]
    means = (sums / counts.clamp(min=1)[..., None]).flatten(0, 1).to(embed.dtype)
    embed[ids] = torch.where(used, means, embed[ids])  # tensor ops only: no device-to-host read per code
    out = model.get_output_embeddings()
    tied = out is None or out.weight.data_ptr() == embed.data_ptr()
    if not tied:
        out.weight[old_vocab:] = old_out.mean(0)
    model.config.vocab_size = len(tokenizer)
