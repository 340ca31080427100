"""Training records: one prompt-completion pair per assistant turn, in the output format of gencrs.format."""

from gencrs.data import Dataset, build_examples
from gencrs.data.examples import Example
from gencrs.format import assistant_turn, prompt_messages
from tokenizer_ext.codebook import CodeBook


def turn_text(example: Example, codebook: CodeBook) -> str:
    return assistant_turn(example.intent, [codebook.text(t) for t in example.targets], example.response)


def sft_records(dataset: Dataset, split: str, codebook: CodeBook, tokenizer, max_length: int,
                limit: int | None = None) -> list[dict]:
    """Conversational prompt-completion records. The oldest context messages are dropped until prompt + completion
    fit `max_length` tokens (TRL only truncates the end, which would cut the completion). `limit`: the first N only."""
    records = []
    for ex in build_examples(dataset, split):
        if limit is not None and len(records) >= limit:
            break
        completion = [{"role": "assistant", "content": turn_text(ex, codebook)}]
        context = list(ex.context)
        while True:
            prompt = prompt_messages(context)
            n = len(tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=False))
            if n <= max_length or not context:
                break
            context = context[1:]
        if n > max_length:
            continue  # the completion alone is too long: skipped, and counted by the caller
        records.append({"prompt": prompt, "completion": completion, "key": ex.key})
    return records
