"""One assistant turn under the constraint, request by request: the framework-free core every backend applies.

`TurnRules` holds what is shared (the catalog's constraint, subset constraints, title tokens, caches of masks);
`TurnWalk` is one sequence's walk through its turn. Backends only feed a walk the tokens its sequence produced and
apply `TurnRules.banned(walks)`: the transformers processor (gencrs.decoding.hf), vLLM's V1 processor and vLLM's Model
Runner V2 processor (gencrs.serving.processor). So what is evaluated offline is what is served.

The rule, on top of gencrs.decoding.constraint (intent, target span of catalog code sequences, response):
- in the response an item span `<|item|>...<|/item|>` holds the title of an item the target span chose, token for
  token; with no item chosen `<|item|>` is banned. So every item a response names is one the turn recommends;
- the response ends (end of sequence) only once every chosen item was named in a span, so what the response names is
  what the target span chose (the data's definition of targets: the items a turn's response newly recommends). Only a
  length limit can cut a turn before that;
- outside item spans the response cannot complete a catalog title (of 3 tokens or more, written as free text is
  tokenized: at the start of the text or after a space): the token that would end it is banned. A model that wanted
  a span where none is allowed (a turn that chose no item) otherwise writes the title unmarked, where no other rule
  applies (`TitleWatch`);
- per request, `items` (recommend only among these) and `exclude` (never these) narrow the target span.

Most tokens of a turn are ordinary response text: there a walk only watches for the end of the turn and for item
spans, in plain Python, and its mask is a shared cached tensor (the rule runs once per decoding step for every
sequence, so its cost is paid on every token). Masks live on the backend's device in an LRU bounded in bytes.
"""

from pathlib import Path

import torch
from cachetools import LRUCache

from gencrs.decoding.constraint import Phase, TurnConstraint
from gencrs.format import ITEM_END, ITEM_START
from gencrs.model_dir import read_titles
from tokenizer_ext.codebook import CodeBook

MASK_CACHE_BYTES = 64 << 20  # 64 MiB: 512 masks of a 128k vocabulary, about 16,000 of the tiny models' 4k
SUBSET_CACHE = 16  # constraints of distinct `items`/`exclude` sets kept at once
TRANSITION_CACHE = 1 << 16


class TitleWatch:
    """The catalog's titles as token sequences, in one prefix tree, to find where free text is about to complete one.

    A walk keeps the nodes of the partial matches that end at its newest token (a title may start at any token), so
    a step costs a few dict look-ups. Titles shorter than `min_tokens` are not watched: banning a one- or two-token
    title would ban common words."""

    def __init__(self, tokenizer, titles, min_tokens: int = 3):
        self.children: dict[tuple[int, int], int] = {}  # (node, token) -> node; 0 is the root
        ends: dict[int, set[int]] = {}
        texts = [text for title in sorted(set(titles)) for text in (title, " " + title)]
        for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []:  # one batched call
            if len(ids) < min_tokens:
                continue
            node = 0
            for token in ids[:-1]:
                node = self.children.setdefault((node, token), len(self.children) + 1)
            ends.setdefault(node, set()).add(ids[-1])
        self.completing = {node: frozenset(tokens) for node, tokens in ends.items()}  # node -> tokens ending a title

    def advance(self, active: tuple[int, ...], token: int) -> tuple[int, ...]:
        found = {self.children.get((node, token)) for node in (0, *active)}
        found.discard(None)
        return tuple(sorted(found))

    def banned(self, active: tuple[int, ...]) -> frozenset[int]:
        return frozenset().union(*(self.completing.get(node, ()) for node in active))


class TurnRules:
    def __init__(self, tokenizer, codebook: CodeBook, titles: dict[str, str], vocab_size: int | None = None,
                 device: torch.device | str = "cpu", mask_cache_bytes: int = MASK_CACHE_BYTES, max_items: int = 3):
        self.tokenizer, self.codebook, self.titles = tokenizer, codebook, titles
        self.vocab_size = vocab_size or len(tokenizer)
        self.device, self.max_items = torch.device(device), max_items
        self.constraint = TurnConstraint.from_tokenizer(tokenizer, codebook, self.vocab_size, max_items)
        self.item_start, self.item_end = tokenizer.convert_tokens_to_ids([ITEM_START, ITEM_END])
        self.intent_ids = set(self.constraint.intent_ids.tolist())
        self.eos = tokenizer.eos_token_id
        self._subsets = LRUCache(SUBSET_CACHE)  # sorted item ids -> (serial, constraint); serial 0 is the catalog
        self._serial = 0
        self._masks = LRUCache(mask_cache_bytes, getsizeof=lambda t: t.numel() * t.element_size())
        self._transitions = LRUCache(TRANSITION_CACHE)
        self._titles: dict[str, list[int]] = {}
        self.watch = TitleWatch(tokenizer, titles.values())

    @classmethod
    def from_model_dir(cls, model_dir: str | Path, tokenizer=None, vocab_size: int | None = None,
                       device: torch.device | str = "cpu", **kwargs) -> "TurnRules":
        if tokenizer is None:
            from transformers import AutoTokenizer
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        return cls(tokenizer, CodeBook.load(model_dir), read_titles(model_dir), vocab_size, device, **kwargs)

    @classmethod
    def for_model(cls, model, tokenizer, codebook: CodeBook, titles: dict[str, str], **kwargs) -> "TurnRules":
        """The rule over a loaded transformers model's logits: its lm_head's rows, on its device."""
        vocab_size = model.get_output_embeddings().weight.shape[0]
        return cls(tokenizer, codebook, titles, vocab_size, model.device, **kwargs)

    def constraint_for(self, items=None, exclude=()) -> tuple[int, TurnConstraint]:
        """The constraint of a request's item set (the catalog when `items` is None, minus `exclude`) and its serial
        number, which names it in the cache keys. Cached by content: requests that share a set share one."""
        chosen = set(self.codebook.item_codes if items is None else items) - set(exclude)
        if len(chosen) == len(self.codebook.item_codes):
            return 0, self.constraint
        if not chosen:
            raise ValueError("no catalog item is left to recommend (items minus exclude is empty)")
        key = tuple(sorted(chosen))
        found = self._subsets.get(key)
        if found is None:
            sub = CodeBook(self.codebook.levels, self.codebook.codes_per_level,
                           {i: self.codebook.item_codes[i] for i in key})
            self._serial += 1
            found = self._subsets[key] = (self._serial, TurnConstraint.from_tokenizer(
                self.tokenizer, sub, self.vocab_size, self.max_items))
        return found

    def start(self, prompt_ids=(), items=None, exclude=()) -> "TurnWalk":
        """A walk for a sequence whose prompt is `prompt_ids` (a prompt may already hold the start of the turn)."""
        walk = TurnWalk(self, *self.constraint_for(items, exclude))
        for token in self.open_turn(list(prompt_ids)):
            walk.step(token)
        return walk

    def open_turn(self, prompt_ids: list[int]) -> list[int]:
        """The part of the turn a prompt already holds: from its last intent token on, unless that turn has ended."""
        starts = [n for n, t in enumerate(prompt_ids) if t in self.intent_ids]
        if not starts or self.eos in prompt_ids[starts[-1]:]:
            return []
        return prompt_ids[starts[-1]:]

    def title_tokens(self, item: str) -> list[int]:
        tokens = self._titles.get(item)
        if tokens is None:
            tokens = self._titles[item] = self.tokenizer(self.titles[item], add_special_tokens=False)["input_ids"]
        return tokens

    def cached_mask(self, key: tuple, build) -> torch.Tensor:
        """A banned-token mask by turn state (a turn visits few distinct states, and many sequences share them)."""
        mask = self._masks.get(key)
        if mask is None:
            mask = build().to(self.device)
            self._masks[key] = mask
        return mask

    def transition(self, serial: int, constraint: TurnConstraint, state: tuple, token: int) -> tuple[tuple, str | None]:
        """The state after `token` and the item it completes (None if none), cached like the masks; states are
        (phase, node, items, recommend) tuples."""
        key = (serial, state, token)
        found = self._transitions.get(key)
        if found is None:
            batched = constraint.state_of(*state)
            item = None
            if state[0] == Phase.TARGET:
                stepped = constraint.trie.step(batched.node, torch.tensor([token]))
                if bool(constraint.trie.is_leaf(stepped)[0]):
                    item = constraint.trie.item(int(stepped[0]))
            after = constraint.advance(batched, torch.tensor([token]))
            found = self._transitions[key] = ((int(after.phase[0]), int(after.node[0]), int(after.items[0]),
                                               bool(after.recommend[0])), item)
        return found

    def banned(self, walks: list["TurnWalk"]) -> torch.Tensor:
        """(len(walks), vocab_size) bool on the device: True where the walk's next token is forbidden."""
        return torch.stack([walk.banned() for walk in walks])

    def mask_cache_bytes(self) -> int:
        """Device memory held by the cached masks now (bounded by `mask_cache_bytes`)."""
        return int(self._masks.currsize)


class TurnWalk:
    """One sequence's turn: its state in the constraint, the items its target span chose, the title walk in a span."""

    def __init__(self, rules: TurnRules, serial: int, constraint: TurnConstraint):
        self.rules, self.serial, self.constraint = rules, serial, constraint
        self.state = (int(Phase.INTENT), 0, 0, False)  # phase, trie node, items completed, intent is recommend
        self.chosen: list[str] = []
        self.named: set[str] = set()  # chosen items the response has named in a span
        self.title: list[int] | None = None  # tokens of the item span so far; None outside a span
        self.watched: tuple[int, ...] = ()  # partial catalog titles in the free text, ending at the newest token

    def fork(self) -> "TurnWalk":
        """An independent copy (beam search continues one walk in several beams)."""
        twin = TurnWalk(self.rules, self.serial, self.constraint)
        twin.state, twin.chosen, twin.named, twin.title = self.state, list(self.chosen), set(self.named), self.title
        twin.watched = self.watched
        return twin

    def step(self, token: int) -> None:
        phase = self.state[0]
        if phase == Phase.RESPONSE:
            if self.title is not None:  # inside an item span the title walk, not the turn state, decides
                if token == self.rules.item_end:
                    self.named.update(i for i in self.chosen if self.rules.title_tokens(i) == self.title)
                    self.title = None
                else:
                    self.title = [*self.title, token]
            elif token == self.rules.item_start:
                self.title, self.watched = [], ()
            else:
                self.watched = self.rules.watch.advance(self.watched, token)
            if token != self.rules.eos:
                return
        if phase == Phase.DONE:
            return
        self.state, item = self.rules.transition(self.serial, self.constraint, self.state, token)
        if item is not None:
            self.chosen.append(item)

    def banned(self) -> torch.Tensor:
        """The tokens this sequence may not write next (True = banned): a cached tensor, never to be modified."""
        rules = self.rules
        if self.state[0] == Phase.RESPONSE and self.title is not None:
            return rules.cached_mask(("title", tuple(self.chosen), tuple(self.title)), self._title_banned)
        if self.state[0] == Phase.RESPONSE:
            completing = rules.watch.banned(self.watched) if self.watched else frozenset()
            return rules.cached_mask(("response", self.serial, bool(self.chosen), self.unnamed(), completing),
                                     lambda: self._response_banned(completing))
        return rules.cached_mask(("turn", self.serial, self.state), self._turn_banned)

    def unnamed(self) -> bool:
        """Some chosen item is not named in the response yet."""
        return not self.named.issuperset(self.chosen)

    def _turn_banned(self) -> torch.Tensor:
        mask = self.constraint.mask(self.constraint.state_of(*self.state))[0]
        if self.state[0] == Phase.RESPONSE:
            mask[self.rules.item_end] = False  # only the title walk closes a span
            if not self.chosen:
                mask[self.rules.item_start] = False
            if self.unnamed():
                mask[self.rules.eos] = False
        return ~mask

    def _response_banned(self, completing: frozenset[int]) -> torch.Tensor:
        banned = self._turn_banned()
        banned[[t for t in completing if t < len(banned)]] = True
        return banned

    def _title_banned(self) -> torch.Tensor:
        mask = torch.zeros(self.rules.vocab_size, dtype=torch.bool)
        written = len(self.title)
        for item in self.chosen:
            tokens = self.rules.title_tokens(item)
            if tokens[:written] == self.title:
                mask[tokens[written] if len(tokens) > written else self.rules.item_end] = True
        return ~mask
