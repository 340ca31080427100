import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gencrs.format import SPECIAL_TOKENS
from tokenizer_ext import CodeBook
from tokenizer_ext.extend import extend_model, extend_tokenizer, new_token_ids


def test_extension_keeps_the_base_model_on_ordinary_text(tiny_base, redial_codes, redial):
    codebook = redial_codes[0]
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    chat = [{"role": "user", "content": "I love comedy movies. Any ideas?"}, {"role": "assistant", "content": "You might enjoy a drama."}]
    ids = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        old = model(ids).logits
    old_vocab = old.shape[-1]

    added = extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    extend_model(model, tokenizer, codebook, {i: redial.title(i) for i in codebook.item_codes})
    assert len(added) == len(SPECIAL_TOKENS) + 3 * 256
    assert new_token_ids(tokenizer, codebook, SPECIAL_TOKENS) == added
    with torch.no_grad():
        new = model(ids).logits
    assert new.shape[-1] == len(tokenizer) == old_vocab + len(added)
    # the ordinary text still tokenizes the same way, and the old vocabulary's logits are unchanged
    assert torch.equal(tokenizer(tokenizer.apply_chat_template(chat, tokenize=False), add_special_tokens=False, return_tensors="pt")["input_ids"], ids)
    torch.testing.assert_close(new[..., :old_vocab], old, rtol=0, atol=1e-5)
    # new output rows are the mean old row: each new token's logit is the mean old logit, so the mass they take is
    # at most len(added)/old_vocab per position (Jensen), and their logits sit below the best old token
    mass = new.softmax(-1)[..., old_vocab:].sum(-1)
    assert (mass <= len(added) / old_vocab + 1e-6).all()
    torch.testing.assert_close(new[..., old_vocab:].amax(-1), old.mean(-1), rtol=0, atol=1e-4)
    assert (new[..., old_vocab:].amax(-1) < old.amax(-1)).all()


def test_code_rows_start_from_their_items_title_tokens(tiny_base, redial):
    codebook = CodeBook(2, 2, {"100030": (0, 0), "100026": (1, 0)})  # Friends with Benefits, Pari
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    old = model.get_input_embeddings().weight.detach().clone()
    titles = {i: redial.title(i) for i in codebook.item_codes}
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    extend_model(model, tokenizer, codebook, titles)
    embed = model.get_input_embeddings().weight.detach()
    title_mean = {i: old[tokenizer(t, add_special_tokens=False)["input_ids"]].mean(0) for i, t in titles.items()}
    a0, a1, b0, b1 = tokenizer.convert_tokens_to_ids(["<a_0>", "<a_1>", "<b_0>", "<b_1>"])
    torch.testing.assert_close(embed[a0], title_mean["100030"])
    torch.testing.assert_close(embed[a1], title_mean["100026"])
    torch.testing.assert_close(embed[b0], (title_mean["100030"] + title_mean["100026"]) / 2)
    torch.testing.assert_close(embed[b1], old.mean(0))  # unused code: mean row
    assert embed[len(old):].norm(dim=-1).max() <= old.norm(dim=-1).max()  # never randomly large


def test_extension_stays_on_the_embeddings_device(tiny_base, synthetic):
    """A 4-bit 8B load puts the embeddings on the GPU, and CUDA refuses to mix floating-point tensors of two devices.
    Without a GPU: the model on the `meta` device, and every operation of the extension checked for floating-point
    tensors on two devices (integer index tensors may stay on the CPU, as CUDA allows)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves
    from transformers import AutoConfig

    class NoDeviceMixing(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            tensors = [t for t in tree_leaves((args, kwargs or {})) if isinstance(t, torch.Tensor)]
            devices = {t.device for t in tensors if t.is_floating_point() and t.dim() > 0}
            assert len(devices) <= 1, f"{func} mixes {devices}"
            return func(*args, **(kwargs or {}))

    codebook = CodeBook(2, 4, {item: (n % 4, n // 4 % 4) for n, item in enumerate(list(synthetic.catalog)[:16])})
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(tiny_base))
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    with NoDeviceMixing():
        extend_model(model, tokenizer, codebook, {i: synthetic.title(i) for i in codebook.item_codes})
    assert model.get_input_embeddings().weight.device.type == "meta"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


@pytest.mark.gpu
def test_extension_of_a_4bit_model_on_cuda(real_generative, synthetic):
    from gencrs.model import load_model

    model, tokenizer = load_model(real_generative["base"], load_in_4bit=True)  # on CUDA: NF4, every weight on GPU 0
    codebook = CodeBook.load(real_generative["semantic_ids"])
    old_vocab = len(tokenizer)
    extend_tokenizer(tokenizer, codebook, SPECIAL_TOKENS)
    extend_model(model, tokenizer, codebook, {i: synthetic.title(i) for i in synthetic.catalog})
    embed = model.get_input_embeddings().weight
    assert embed.device.type == "cuda" and embed.shape[0] == len(tokenizer) > old_vocab
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    if model.config.tie_word_embeddings:
        assert model.get_output_embeddings().weight is embed
    assert torch.isfinite(embed[old_vocab:].float()).all()
    code_ids = tokenizer.convert_tokens_to_ids(codebook.all_tokens())
    assert (embed[code_ids] != embed[old_vocab:].mean(0)).any(-1).sum() > len(code_ids) // 2  # title means, not one row
