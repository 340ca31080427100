"""What ConKD needs from the teachers, per training example and completion position.

- Dialogue teacher, at every completion position t: the probability mass it puts on item (code) tokens (the gate
  input) and its top-k next-token distribution (ids and probabilities).
- Recommendation teacher, at every code position of the gold target span: a distribution over that level's code
  tokens, obtained from its item distribution by summing item probabilities along the trie given the gold prefix:
      P(code c at level l | gold c_1..c_{l-1}) = sum of P(item) over items with prefix (c_1..c_{l-1}, c) / the same sum
      over items with prefix (c_1..c_{l-1}).
  Items already written earlier in the same span are excluded before normalizing (an item is not repeated), and
  with exclude_context so are the items the context mentions (a target never is one of them).
Both can be computed online in the training step or cached on disk (float16 top-k + mass), `TeacherCache`.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tokenizer_ext.codebook import CodeBook


def code_distributions(item_probs: torch.Tensor, item_codes: torch.Tensor, gold: list[tuple[int, ...]],
                       codes_per_level: int) -> torch.Tensor:
    """item_probs (n_items,), item_codes (n_items, L) -> (len(gold) * L, K): one code distribution per gold code slot."""
    levels = item_codes.shape[1]
    out = torch.zeros(len(gold) * levels, codes_per_level)
    probs = item_probs.clone().float()
    for n, codes in enumerate(gold):
        prefix_ok = torch.ones(len(probs), dtype=torch.bool)
        for level in range(levels):
            masked = probs * prefix_ok
            dist = torch.zeros(codes_per_level).index_add_(0, item_codes[:, level], masked)
            total = dist.sum()
            out[n * levels + level] = dist / total if total > 0 else torch.full((codes_per_level,), 1 / codes_per_level)
            prefix_ok &= item_codes[:, level] == codes[level]
        probs = probs * ~prefix_ok  # the item just written (full prefix match) is not repeated
    return out


def item_code_tensor(codebook: CodeBook, item_ids: list[str]) -> torch.Tensor:
    return torch.tensor([codebook.item_codes[i] for i in item_ids], dtype=torch.long)


@torch.no_grad()
def dialogue_teacher_outputs(logits: torch.Tensor, code_token_ids: torch.Tensor, top_k: int) -> dict:
    """logits (T, V) at completion positions -> item-token mass (T,), top-k ids (T, k) and probabilities (T, k)."""
    probs = logits.float().softmax(-1)
    top = probs.topk(top_k, dim=-1)
    return {"mass": probs[:, code_token_ids].sum(-1), "topk_ids": top.indices, "topk_probs": top.values}


@dataclass
class TeacherCache:
    """Per-example teacher outputs in one safetensors file: flat float16/int32 arrays plus per-example offsets."""

    directory: Path

    def write(self, keys: list[str], rows: list[dict], fingerprint: str = "") -> dict:
        """rows[i]: {"mass": (T,), "topk_ids": (T,k), "topk_probs": (T,k), "rec": (P,K)}; returns size statistics.
        `fingerprint` names what the outputs were computed from (teachers, max_length, top_k)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lengths = torch.tensor([len(r["mass"]) for r in rows])
        rec_lengths = torch.tensor([len(r["rec"]) for r in rows])
        tensors = {
            "mass": torch.cat([r["mass"] for r in rows]).half(),
            "topk_ids": torch.cat([r["topk_ids"] for r in rows]).int(),
            "topk_probs": torch.cat([r["topk_probs"] for r in rows]).half(),
            "rec": torch.cat([r["rec"] for r in rows]).half() if rec_lengths.sum() else torch.zeros(0, 1).half(),
            "offsets": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
            "rec_offsets": torch.cat([torch.zeros(1, dtype=torch.long), rec_lengths.cumsum(0)]),
        }
        tmp = self.directory / ".teacher_outputs.safetensors.tmp"
        save_file(tensors, str(tmp), metadata={"keys": "\n".join(keys), "fingerprint": fingerprint})
        tmp.replace(self.directory / "teacher_outputs.safetensors")
        size = (self.directory / "teacher_outputs.safetensors").stat().st_size
        return {"examples": len(rows), "bytes": size, "bytes_per_example": size / max(len(rows), 1)}

    def fingerprint(self) -> str | None:
        """The fingerprint the cache was written with; None when there is no cache."""
        from safetensors import safe_open
        path = self.directory / "teacher_outputs.safetensors"
        if not path.exists():
            return None
        with safe_open(str(path), "pt") as f:
            return f.metadata().get("fingerprint", "")

    def read(self) -> dict[str, dict]:
        from safetensors import safe_open
        path = self.directory / "teacher_outputs.safetensors"
        with safe_open(str(path), "pt") as f:
            keys = f.metadata()["keys"].split("\n")
        t = load_file(str(path))
        out = {}
        for n, key in enumerate(keys):
            a, b = int(t["offsets"][n]), int(t["offsets"][n + 1])
            c, d = int(t["rec_offsets"][n]), int(t["rec_offsets"][n + 1])
            out[key] = {"mass": t["mass"][a:b].float(), "topk_ids": t["topk_ids"][a:b].long(),
                        "topk_probs": t["topk_probs"][a:b].float(), "rec": t["rec"][c:d].float()}
        return out


@torch.no_grad()
def online_dialogue_outputs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                            code_token_ids: torch.Tensor, top_k: int) -> list[dict]:
    """Run the dialogue teacher on a training batch (moved to the teacher's device); per row, its outputs at the
    completion positions (where the shifted labels are not -100), in order, on that device."""
    device = next(model.parameters()).device
    logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                   use_cache=False).logits[:, :-1]
    targets, code_token_ids = labels[:, 1:].to(device), code_token_ids.to(device)
    rows = []
    for row_logits, row_targets in zip(logits, targets):
        rows.append(dialogue_teacher_outputs(row_logits[row_targets != -100], code_token_ids, top_k))
    return rows


def online_rec_outputs(rec_teacher, contexts, targets: list[list[str]], codebook: CodeBook) -> list[torch.Tensor]:
    """Per example, the code distributions of its gold target span (zero rows when it has no target); a context's
    `exclude` items get no probability."""
    probs = rec_teacher.item_probs(contexts)
    index = {item: n for n, item in enumerate(rec_teacher.item_ids)}
    for row, context in zip(probs, contexts):
        row[[index[i] for i in context.exclude if i in index]] = 0
    codes = item_code_tensor(codebook, rec_teacher.item_ids)
    return [code_distributions(p, codes, [codebook.item_codes[t] for t in gold], codebook.codes_per_level)
            for p, gold in zip(probs, targets)]


def encode_records(tokenizer, records: list[dict]) -> tuple[dict, torch.Tensor]:
    """Right-padded input ids of prompt + completion, and labels that are -100 outside the completion."""
    tokenizer.padding_side = "right"
    prompts = [tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in records]
    fulls = [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in records]
    enc = tokenizer(fulls, add_special_tokens=False, return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    for row, prompt in enumerate(prompts):
        labels[row, : len(tokenizer(prompt, add_special_tokens=False)["input_ids"])] = -100
    labels[enc["attention_mask"] == 0] = -100
    return enc, labels


def load_teachers(dialogue_teacher: str, rec_teacher: str, dataset, split: str = "train", load_in_4bit: bool = False):
    """(dialogue model, its tokenizer, code table, rec teacher, examples of `split` by key): what computing teacher
    outputs needs. The dialogue teacher is placed by gencrs.training.model.placement (on CUDA: this process's GPU,
    bfloat16; `load_in_4bit`: its base in NF4, as the QLoRA student's)."""
    from gencrs.data import build_examples
    from gencrs.teachers.rec import RecTeacher
    from gencrs.training.model import load_trained

    model, tokenizer, codebook = load_trained(dialogue_teacher, load_in_4bit)
    examples = {e.key: e for e in build_examples(dataset, split)}
    return model, tokenizer, codebook, RecTeacher.load(rec_teacher), examples


def cache_fingerprint(dialogue_teacher: str, rec_teacher: str, max_length: int, top_k: int, records: list[dict],
                      exclude_context: bool = False) -> str:
    """What a teacher cache depends on: both teachers' files (path, size, mtime), max_length, top_k, the records and
    whether the rec teacher's context items are excluded."""
    import hashlib
    parts = [str(max_length), str(top_k), str(len(records)), records[-1]["key"] if records else ""]
    parts += ["exclude_context"] if exclude_context else []  # absent when off: caches built before the option stay valid
    for directory in (dialogue_teacher, rec_teacher):
        for path in sorted(Path(directory).glob("*")):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def compute_teacher_outputs(dialogue_model, tokenizer, rec_teacher, codebook: CodeBook, examples: dict, records: list[dict],
                            batch_size: int = 16, top_k: int = 32, exclude_context: bool = False) -> tuple[list[str], list[dict]]:
    """Online outputs of both teachers for `records` (gencrs.training.records.sft_records); `examples` maps a record's
    key to its Example. Returns keys and per-record rows as TeacherCache stores them."""
    from tqdm.auto import tqdm

    source = TeacherSource.from_teachers(records, examples, dialogue_model, rec_teacher, tokenizer, codebook, top_k,
                                         exclude_context)
    rec_teacher.prepare([source.context(i) for i in range(len(records))])  # embed all context texts in one pass
    rows = []
    for start in tqdm(range(0, len(records), batch_size), desc="teacher outputs", unit="batch"):
        indices = list(range(start, min(start + batch_size, len(records))))
        enc, labels = encode_records(tokenizer, [records[i] for i in indices])
        rows += [{k: v.cpu() for k, v in row.items()} for row in source.rows(indices, enc, labels)]  # kept on the host
    return [r["key"] for r in records], rows


class TeacherSource:
    """The teachers' outputs for a training row, found by its example index (position in the run's train records):
    read from a TeacherCache, or computed online from the loaded teachers in the training step."""

    def __init__(self, records: list[dict], cached: dict | None = None, online: dict | None = None):
        self.records, self.cached, self.online = records, cached, online

    @classmethod
    def from_cache(cls, records: list[dict], directory: str | Path) -> "TeacherSource":
        cached = TeacherCache(Path(directory)).read()
        missing = [r["key"] for r in records if r["key"] not in cached]
        if missing:
            raise ValueError(f"teacher cache {directory} lacks {len(missing)} of {len(records)} training records "
                             f"(first: {missing[0]}); rebuild it with recipes/cache_teacher_outputs.py")
        return cls(records, cached=cached)

    @classmethod
    def from_teachers(cls, records: list[dict], examples: dict, dialogue_model, rec_teacher, tokenizer,
                      codebook: CodeBook, top_k: int, exclude_context: bool = False) -> "TeacherSource":
        code_ids = torch.tensor(tokenizer.convert_tokens_to_ids(codebook.all_tokens()))
        return cls(records, online={"examples": examples, "dialogue_model": dialogue_model.eval(), "rec": rec_teacher,
                                    "codebook": codebook, "code_ids": code_ids, "top_k": top_k,
                                    "exclude_context": exclude_context})

    def context(self, index: int):
        """The recommendation teacher's view of a training record: its context messages and items, and the items its
        distribution leaves out (the context's with exclude_context, else none)."""
        from eval.protocols import Context
        key = self.records[index]["key"]
        example = self.online["examples"][key]
        exclude = list(example.context_items) if self.online["exclude_context"] else []
        return Context(key, example.context, example.context_items, exclude)

    def rows(self, indices: list[int], inputs: dict, labels: torch.Tensor) -> list[dict]:
        keys = [self.records[i]["key"] for i in indices]
        if self.cached is not None:
            return [self.cached[k] for k in keys]
        o = self.online
        dialogue = online_dialogue_outputs(o["dialogue_model"], inputs["input_ids"], inputs["attention_mask"], labels,
                                           o["code_ids"], o["top_k"])
        contexts = [self.context(i) for i in indices]
        rec = online_rec_outputs(o["rec"], contexts, [o["examples"][k].targets for k in keys], o["codebook"])
        return [{**d, "rec": r} for d, r in zip(dialogue, rec)]
