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

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gencrs.data.protocols import Context
from gencrs.model import completion_logits, load_trained
from gencrs.teachers.rec import RecTeacherEnsemble, load_rec_teacher
from tokenizer_ext.codebook import CodeBook

log = logging.getLogger(__name__)


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
    mask = labels[:, 1:].to(device) != -100
    logits, _ = completion_logits(model, {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)},
                                  mask)
    sizes = mask.sum(1).tolist()
    parts = {k: v.split(sizes) for k, v in dialogue_teacher_outputs(logits, code_token_ids.to(device), top_k).items()}
    return [{k: parts[k][row] for k in parts} for row in range(len(sizes))]


def excluded_item_probs(rec_teacher, contexts) -> torch.Tensor:
    """The rec teacher's P(item | context), each context's `exclude` items at zero (not renormalized)."""
    probs = rec_teacher.item_probs(contexts)
    index = {item: n for n, item in enumerate(rec_teacher.item_ids)}
    for row, context in zip(probs, contexts):
        row[[index[i] for i in context.exclude if i in index]] = 0
    return probs


def online_rec_outputs(rec_teacher, contexts, targets: list[list[str]], codebook: CodeBook) -> list[torch.Tensor]:
    """Per example, the code distributions of its gold target span (zero rows when it has no target); a context's
    `exclude` items get no probability."""
    probs = excluded_item_probs(rec_teacher, contexts)
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


def cache_fingerprint(dialogue_teacher: str, rec_teacher: str, max_length: int, top_k: int, records: list[dict],
                      exclude_context: bool = False, rec_teacher_folds: tuple[str, ...] = ()) -> str:
    """What a teacher cache depends on: both teachers' files (path, size, mtime; the fold teachers' too when the rec
    teacher is cross-fitted, the members' when it is an ensemble), max_length, top_k, the records (their keys, prompts
    and completions) and whether the rec teacher's context items are excluded."""
    import hashlib
    import json
    content = hashlib.sha256(json.dumps([[r["key"], r["prompt"], r["completion"]] for r in records]).encode())
    parts = [str(max_length), str(top_k), str(len(records)), content.hexdigest()]
    parts += ["exclude_context"] if exclude_context else []  # absent when off: caches built before the option stay valid
    for directory in (dialogue_teacher, rec_teacher, *RecTeacherEnsemble.members(rec_teacher), *rec_teacher_folds):
        for path in sorted(Path(directory).glob("*")):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class CachedTeachers:
    """The teachers' outputs for a training row, found by its example index (position in the run's train records), read
    from a TeacherCache."""

    def __init__(self, records: list[dict], directory: str | Path):
        self.records, self.cached = records, TeacherCache(Path(directory)).read()
        missing = [r["key"] for r in records if r["key"] not in self.cached]
        if missing:
            raise ValueError(f"teacher cache {directory} lacks {len(missing)} of {len(records)} training records "
                             f"(first: {missing[0]}); rebuild it with recipes/cache_teacher_outputs.py")

    def rows(self, indices: list[int], inputs: dict, labels: torch.Tensor) -> list[dict]:
        return [self.cached[self.records[i]["key"]] for i in indices]


class OnlineTeachers:
    """The same, computed from the loaded teachers in the training step: the dialogue teacher on the batch, the rec
    teacher on each row's context (`examples`: a record's key -> its Example)."""

    def __init__(self, records: list[dict], examples: dict, dialogue_model, rec_teacher, tokenizer, codebook: CodeBook,
                 top_k: int, exclude_context: bool = False):
        self.records, self.examples, self.rec, self.codebook = records, examples, rec_teacher, codebook
        self.tokenizer = tokenizer
        self.dialogue_model, self.top_k, self.exclude_context = dialogue_model.eval(), top_k, exclude_context
        self.code_ids = torch.tensor(tokenizer.convert_tokens_to_ids(codebook.all_tokens()))

    def context(self, index: int) -> Context:
        """The recommendation teacher's view of a training record: its context messages and items, and the items its
        distribution leaves out (the context's with exclude_context, else none)."""
        example = self.examples[self.records[index]["key"]]
        exclude = list(example.context_items) if self.exclude_context else []
        return Context(example.key, example.context, example.context_items, exclude)

    def rows(self, indices: list[int], inputs: dict, labels: torch.Tensor) -> list[dict]:
        rec = self.rec_rows(indices)
        return [{**d, "rec": r} for d, r in zip(self.dialogue_rows(inputs, labels), rec)]

    def dialogue_rows(self, inputs: dict, labels: torch.Tensor) -> list[dict]:
        return online_dialogue_outputs(self.dialogue_model, inputs["input_ids"], inputs["attention_mask"], labels,
                                       self.code_ids, self.top_k)

    def rec_rows(self, indices: list[int]) -> list[torch.Tensor]:
        contexts = [self.context(i) for i in indices]
        targets = [self.examples[self.records[i]["key"]].targets for i in indices]
        return online_rec_outputs(self.rec, contexts, targets, self.codebook)


def compute_teacher_outputs(teachers: OnlineTeachers, batch_size: int = 16, partial: Path | None = None,
                            fingerprint: str = "", shard_batches: int = 100) -> tuple[list[str], list[dict]]:
    """Both teachers' outputs for every one of `teachers.records`, in batches; keys and per-record rows (on the host)
    as TeacherCache stores them. With `partial`, every `shard_batches` batches are written there as a shard (a
    TeacherCache of their rows, under `fingerprint`), and shards already there with the same fingerprint and records
    are read instead of computed: a killed build resumes at its last shard."""
    from tqdm.auto import tqdm

    records = teachers.records
    keys = [r["key"] for r in records]
    shard_size = batch_size * shard_batches
    rows, prepared = [], False
    progress = tqdm(total=len(records), desc="teacher outputs", unit="record")
    for start in range(0, len(records), shard_size):
        end = min(start + shard_size, len(records))
        shard = TeacherCache(partial / f"{start:07d}") if partial else None
        shard_fingerprint = f"{fingerprint} records {start}-{end}"
        if shard and shard.fingerprint() == shard_fingerprint:
            read = shard.read()
            rows += [read[key] for key in keys[start:end]]
            progress.update(end - start)
            continue
        if not prepared:  # embed all context texts in one pass
            teachers.rec.prepare([teachers.context(i) for i in range(len(records))])
            prepared = True
        rec_rows = teachers.rec_rows(list(range(start, end)))  # a whole shard at once: one graph pass
        shard_rows = []
        for first in range(start, end, batch_size):
            indices = list(range(first, min(first + batch_size, end)))
            enc, labels = encode_records(teachers.tokenizer, [records[i] for i in indices])
            dialogue = teachers.dialogue_rows(enc, labels)
            shard_rows += [{**{k: v.cpu() for k, v in d.items()}, "rec": rec_rows[i - start]}
                           for d, i in zip(dialogue, indices)]
            progress.update(len(indices))
        if shard:
            shard.write(keys[start:end], shard_rows, shard_fingerprint)
        rows += shard_rows
    progress.close()
    return keys, rows


@dataclass
class TeacherSettings:
    """Which teachers, and how their outputs are taken: what a teacher cache's fingerprint records."""
    dialogue_teacher: str  # a trained dialogue teacher's OUT/adapter or OUT/model
    rec_teacher: str  # a trained recommendation teacher's OUT/teacher
    top_k: int = 32  # dialogue-teacher tokens kept per position
    exclude_context: bool = False  # the rec teacher's target distribution leaves out the context's items
    load_in_4bit: bool = False  # the dialogue teacher's base in NF4 (as a QLoRA student's)
    rec_teacher_folds: tuple[str, ...] = ()  # cross-fitted fold teachers that read the train contexts instead


def load_online_teachers(settings: TeacherSettings, examples: dict, records: list[dict], tokenizer,
                         codebook: CodeBook) -> OnlineTeachers:
    """Both teachers loaded, the dialogue teacher placed by gencrs.model.placement (on CUDA: this process's GPU)."""
    dialogue_model, _, _ = load_trained(settings.dialogue_teacher, settings.load_in_4bit)
    rec_teacher = load_rec_teacher(settings.rec_teacher, settings.rec_teacher_folds)
    return OnlineTeachers(records, examples, dialogue_model, rec_teacher, tokenizer, codebook, settings.top_k,
                          settings.exclude_context)


def ensure_teacher_cache(settings: TeacherSettings, directory: str | Path, examples: dict, records: list[dict], tokenizer,
                         codebook: CodeBook, max_length: int, batch_size: int = 16) -> dict:
    """The one way teacher outputs are built: the cache in `directory` of both teachers' outputs for `records`
    (gencrs.data.records), kept when its fingerprint matches these teachers and settings, else computed (teachers
    loaded, every record run, rows kept on the host) and written. Returns the cache's size and how it was obtained."""
    import time

    expected = cache_fingerprint(settings.dialogue_teacher, settings.rec_teacher, max_length, settings.top_k, records,
                                 settings.exclude_context, settings.rec_teacher_folds)
    cache = TeacherCache(Path(directory))
    found = cache.fingerprint()
    if found == expected:
        return {"examples": len(records), "built": False}
    if found is not None:
        log.info("teacher cache %s was computed from other teachers or settings: rebuilding", directory)
    rec = (f"{len(settings.rec_teacher_folds)} cross-fitted fold teachers ({', '.join(settings.rec_teacher_folds)})"
           if settings.rec_teacher_folds else settings.rec_teacher)
    log.info("building the teacher cache %s from %s and %s", directory, settings.dialogue_teacher, rec)
    teachers = load_online_teachers(settings, examples, records, tokenizer, codebook)
    start = time.perf_counter()
    partial = Path(directory) / "partial"
    keys, rows = compute_teacher_outputs(teachers, batch_size, partial, expected)
    seconds = time.perf_counter() - start
    stats = cache.write(keys, rows, expected)
    shutil.rmtree(partial, ignore_errors=True)
    log.info("teacher cache: %d examples, %.0f bytes per example", stats["examples"], stats["bytes_per_example"])
    return {**stats, "built": True, "compute_seconds": seconds}
