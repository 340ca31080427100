"""The generative recommender reads a trained model's prompt format from its directory."""


def test_a_context_codes_run_is_evaluated_with_the_prompts_it_trained_on(synthetic, synthetic_generative, tmp_path):
    """A run with `context_codes` records it in its model directory, and an export carries it; the harness then
    builds each prompt as the run's records did, opening with the codes of the context's items. The same weights
    without the flag are prompted without them."""
    from transformers import AutoTokenizer

    from eval.generative import GenerativeRecommender
    from gencrs.data.protocols import build_instances, contexts_of
    from gencrs.data.records import sft_records
    from gencrs.model_dir import reads_context_codes
    from gencrs.serving.export import export_model
    from gencrs.training.sft import SFTRunConfig, train_sft
    from tokenizer_ext import CodeBook

    train_sft(SFTRunConfig(
        dataset="synthetic", base_model=synthetic_generative["model"], semantic_ids=synthetic_generative["semantic_ids"],
        out=str(tmp_path / "run"), finetune="full", context_codes=True, max_length=256, batch_size=4, max_steps=1,
        train_limit=4, valid_limit=2, save_steps=100, logging_steps=1))
    model = tmp_path / "run" / "model"
    assert reads_context_codes(model) and reads_context_codes(export_model(model, tmp_path / "export"))
    assert not reads_context_codes(synthetic_generative["model"])

    codebook = CodeBook.load(synthetic_generative["semantic_ids"])
    tokenizer = AutoTokenizer.from_pretrained(model)
    records = {r["key"]: r for r in sft_records(synthetic, "valid", codebook, tokenizer, max_length=2048,
                                                context_codes=True)}
    contexts = [c for c in contexts_of(build_instances(synthetic, "valid", "recommender")) if c.items][:6]
    trained = GenerativeRecommender.load(str(model)).prompts(contexts)
    for context, prompt in zip(contexts, trained):
        record_prompt = tokenizer.apply_chat_template(records[context.key]["prompt"], tokenize=False,
                                                      add_generation_prompt=True)
        assert prompt == record_prompt
        assert " ".join(codebook.text(i) for i in context.items) in prompt
    untrained = GenerativeRecommender.load(synthetic_generative["model"]).prompts(contexts)
    assert not any(codebook.text(i) in prompt for c, prompt in zip(contexts, untrained) for i in c.items)
