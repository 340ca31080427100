"""A compact prefix tree over the catalog's code-token sequences, answering batched "which tokens may follow".

Nodes are numbered (0 = root). The children of every node are stored as CSR arrays (`offsets`, `tokens`, `children`),
and transitions as sorted keys `parent * vocab + token` so that a batch of states advances with one `searchsorted`.
Every operation on a batch is a handful of tensor ops, independent of the vocabulary size.
"""

import torch

from tokenizer_ext.codebook import CodeBook

INVALID = -1


class Trie:
    def __init__(self, sequences: dict[str, list[int]]):
        if not sequences:
            raise ValueError("trie needs at least one sequence")
        lengths = {len(s) for s in sequences.values()}
        if len(lengths) != 1:
            raise ValueError(f"all sequences must have one length, got {sorted(lengths)}")
        self.length = lengths.pop()
        children: list[dict[int, int]] = [{}]
        depth = [0]
        leaf_item: dict[int, str] = {}
        for item, seq in sorted(sequences.items()):
            node = 0
            for token in seq:
                nxt = children[node].get(token)
                if nxt is None:
                    nxt = len(children)
                    children[node][token] = nxt
                    children.append({})
                    depth.append(depth[node] + 1)
                node = nxt
            if node in leaf_item:
                raise ValueError(f"items {leaf_item[node]} and {item} have the same token sequence")
            leaf_item[node] = item
        self.vocab_bound = max(t for c in children for t in c) + 1
        counts = torch.tensor([len(c) for c in children])
        self.offsets = torch.zeros(len(children) + 1, dtype=torch.long)
        self.offsets[1:] = counts.cumsum(0)
        self.tokens = torch.tensor([t for c in children for t in sorted(c)], dtype=torch.long)
        self.children = torch.tensor([c[t] for c in children for t in sorted(c)], dtype=torch.long)
        parents = torch.repeat_interleave(torch.arange(len(children)), counts)
        keys = parents * self.vocab_bound + self.tokens
        self.keys, order = keys.sort()
        self.key_children = self.children[order]
        self.depth = torch.tensor(depth, dtype=torch.long)
        self.leaf_item = leaf_item
        self.item_leaf = {item: node for node, item in leaf_item.items()}
        self.num_nodes = len(children)

    @classmethod
    def from_codebook(cls, codebook: CodeBook, tokenizer) -> "Trie":
        ids = tokenizer.convert_tokens_to_ids(codebook.all_tokens())
        unk = getattr(tokenizer, "unk_token_id", None)
        if any(i is None or i == unk for i in ids):
            raise ValueError("tokenizer lacks the code tokens: extend it first (tokenizer_ext.extend)")
        token_id = dict(zip(codebook.all_tokens(), ids))
        return cls({item: [token_id[t] for t in codebook.tokens(item)] for item in codebook.item_codes})

    def step(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Advance a batch of states by one token each; INVALID where the token does not continue a catalog sequence."""
        nodes, tokens = nodes.long(), tokens.long()
        ok = (nodes >= 0) & (tokens >= 0) & (tokens < self.vocab_bound)
        keys = nodes.clamp(min=0) * self.vocab_bound + tokens.clamp(0, self.vocab_bound - 1)
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        found = ok & (self.keys[pos] == keys)
        return torch.where(found, self.key_children[pos], torch.full_like(nodes, INVALID))

    def walk(self, prefixes: list[list[int]]) -> torch.Tensor:
        """States after each prefix (INVALID for a prefix that no catalog item starts with)."""
        nodes = torch.zeros(len(prefixes), dtype=torch.long)
        longest = max((len(p) for p in prefixes), default=0)
        for i in range(longest):
            active = torch.tensor([len(p) > i for p in prefixes])
            tokens = torch.tensor([p[i] if len(p) > i else 0 for p in prefixes])
            nodes = torch.where(active, self.step(nodes, tokens), nodes)
        return nodes

    def allowed(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row, token) index pairs of every allowed next token for each state in the batch."""
        nodes = nodes.long()
        valid = nodes >= 0
        starts = torch.where(valid, self.offsets[nodes.clamp(min=0)], torch.zeros_like(nodes))
        counts = torch.where(valid, self.offsets[nodes.clamp(min=0) + 1] - starts, torch.zeros_like(nodes))
        rows = torch.repeat_interleave(torch.arange(len(nodes)), counts)
        first = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        positions = torch.arange(int(counts.sum())) - first + torch.repeat_interleave(starts, counts)
        return rows, self.tokens[positions]

    def mask(self, nodes: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """Boolean (batch, vocab_size) mask of allowed next tokens."""
        mask = torch.zeros(len(nodes), vocab_size, dtype=torch.bool)
        rows, cols = self.allowed(nodes)
        mask[rows, cols] = True
        return mask

    def allowed_tokens(self, prefix: list[int]) -> list[int]:
        return self.allowed(self.walk([prefix]))[1].tolist()

    def is_leaf(self, nodes: torch.Tensor) -> torch.Tensor:
        return (nodes >= 0) & (self.depth[nodes.clamp(min=0)] == self.length)

    def item(self, node: int) -> str | None:
        return self.leaf_item.get(int(node))

    def __contains__(self, sequence) -> bool:
        node = int(self.walk([list(sequence)])[0])
        return node in self.leaf_item
