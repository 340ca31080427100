"""Recommendation teacher: an R-GCN over the knowledge graph and a context encoder that pools the context's linked
entities with self-attention (as KBRD/KGSF do), plus optionally the context text (MiniLM sentence embedding),
scored against every item, plus optionally a weighted co-mention term (`fusion_weight`: log(1 + how often each item
was mentioned in a train dialogue with the context's items)) and a weighted text-retrieval term (`retrieval_weight`:
the cosine of the context with each item's text under a fine-tuned context encoder, gencrs.teachers.context_encoder),
each weight chosen on valid after training. It outputs P(item | context) over the whole catalog and implements the
recommender interface of the evaluation harness."""

import json
import shutil
from pathlib import Path

import torch
from torch import nn
from torch_geometric.nn import RGCNConv

from gencrs.data.examples import source_dialogue
from gencrs.data.protocols import context_text
from gencrs.data.splits import fold_of
from gencrs.errors import GencrsError
from gencrs.io import atomic_dir
from gencrs.teachers.comentions import CoMentions
from gencrs.teachers.context_encoder import ContextRetriever, top_items
from gencrs.teachers.kg import KnowledgeGraph
from tokenizer_ext.embed import embed_texts


class RecTeacherModel(nn.Module):
    def __init__(self, kg: KnowledgeGraph, item_ids: list[str], dim: int = 128, num_bases: int = 8, layers: int = 1,
                 text_dim: int = 0, dropout: float = 0.1):
        super().__init__()
        self.node_embed = nn.Embedding(kg.num_nodes, dim)
        nn.init.normal_(self.node_embed.weight, std=dim ** -0.5)
        self.convs = nn.ModuleList(RGCNConv(dim, dim, kg.num_relations, num_bases=num_bases) for _ in range(layers))
        self.attention = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.text = nn.Linear(text_dim, dim) if text_dim else None
        self.dropout = nn.Dropout(dropout)
        self.item_bias = nn.Parameter(torch.zeros(len(item_ids)))
        self.register_buffer("edge_index", kg.edge_index, persistent=False)
        self.register_buffer("edge_type", kg.edge_type, persistent=False)
        self.register_buffer("item_nodes", torch.tensor([kg.item_nodes[i] for i in item_ids]), persistent=False)

    def node_states(self) -> torch.Tensor:
        h = self.node_embed.weight
        for conv in self.convs:
            h = h + torch.relu(conv(self.dropout(h), self.edge_index, self.edge_type))
        return h

    def forward(self, context_nodes: torch.Tensor, text: torch.Tensor | None = None,
                node_states: torch.Tensor | None = None) -> torch.Tensor:
        """context_nodes: (B, N) node ids padded with -1; text: (B, text_dim). Returns item logits (B, n_items).
        `node_states`: self.node_states() computed once for many batches (the graph pass is most of a batch's cost)."""
        h = self.node_states() if node_states is None else node_states
        present = context_nodes >= 0
        entities = h[context_nodes.clamp(min=0)]  # (B, N, dim)
        weights = self.attention(entities).squeeze(-1).masked_fill(~present, float("-inf")).softmax(-1)
        user = torch.nan_to_num(weights, nan=0.0).unsqueeze(-1).mul(entities).sum(1)  # a context with no entity: 0
        if self.text is not None and text is not None:
            user = user + self.text(text)
        return self.dropout(user) @ h[self.item_nodes].T + self.item_bias


def pad_nodes(node_lists: list[list[int]], max_nodes: int = 64) -> torch.Tensor:
    """Most recent `max_nodes` linked nodes per context, padded with -1."""
    width = max(1, min(max_nodes, max((len(n) for n in node_lists), default=1)))
    out = torch.full((len(node_lists), width), -1, dtype=torch.long)
    for row, nodes in enumerate(node_lists):
        nodes = nodes[-width:]
        if nodes:
            out[row, : len(nodes)] = torch.tensor(nodes)
    return out


class RecTeacher:
    """The trained model with what it needs to read contexts: the graph's linker and the text encoder's name."""

    name = "rec_teacher"

    def __init__(self, model: RecTeacherModel, kg: KnowledgeGraph, item_ids: list[str], encoder: str | None,
                 cache_dir: str | None = None, max_nodes: int = 64, batch_size: int = 256,
                 comentions: CoMentions | None = None, fusion_weight: float = 0.0,
                 retriever: ContextRetriever | None = None, retrieval_weight: float = 0.0):
        self.model, self.kg, self.item_ids = model.eval(), kg, item_ids
        self.encoder, self.cache_dir, self.max_nodes, self.batch_size = encoder, cache_dir, max_nodes, batch_size
        self.comentions, self.fusion_weight = comentions, fusion_weight
        self.retriever, self.retrieval_weight = None, retrieval_weight
        self.index = {item: n for n, item in enumerate(item_ids)}
        if retriever is not None:
            self.attach_retriever(retriever)

    def attach_retriever(self, retriever: ContextRetriever) -> None:
        if retriever.item_ids != self.item_ids:
            raise GencrsError(f"context encoder {retriever.directory} was trained on another catalog than this teacher's "
                              f"({len(retriever.item_ids)} vs {len(self.item_ids)} items, or another order)")
        self.retriever = retriever

    def features(self, contexts) -> tuple[torch.Tensor, torch.Tensor | None]:
        nodes = pad_nodes([self.kg.link(context_text(c, turns=None), c.items) for c in contexts], self.max_nodes)
        text = None
        if self.encoder:
            text = torch.from_numpy(embed_texts([context_text(c) for c in contexts], self.encoder, self.cache_dir))
        return nodes, text

    @torch.no_grad()
    def item_probs(self, contexts) -> torch.Tensor:
        """P(item | context) over the catalog, in `item_ids` order: (len(contexts), n_items)."""
        out, node_states = [], self.model.node_states() if contexts else None
        for start in range(0, len(contexts), self.batch_size):
            batch = contexts[start:start + self.batch_size]
            nodes, text = self.features(batch)
            logits = self.model(nodes, text, node_states)
            if self.fusion_weight and self.comentions:
                logits = logits + self.fusion_weight * self.comention_term(batch)
            if self.retrieval_weight and self.retriever:
                logits = logits + self.retrieval_weight * self.retriever.similarities(batch)
            out.append(logits.softmax(-1))
        return torch.cat(out) if out else torch.zeros(0, len(self.item_ids))

    def comention_term(self, contexts) -> torch.Tensor:
        """log(1 + recency-weighted co-mention count) of every item with the context's items: (len(contexts), n_items)."""
        term = torch.zeros(len(contexts), len(self.item_ids))
        for row, context in enumerate(contexts):
            for column, value in self.comentions.log_scores(context.items, self.index):
                term[row, column] = value
        return term

    def rank(self, contexts, k: int) -> list[list[str]]:
        return top_items(self.item_probs(contexts), contexts, self.item_ids, k)

    def prepare(self, contexts) -> None:
        """Embed the text of many contexts in one pass (item_probs then finds them in the embedding cache)."""
        if self.encoder:
            embed_texts([context_text(c) for c in contexts], self.encoder, self.cache_dir)

    def save(self, directory, config: dict) -> None:
        with atomic_dir(directory) as tmp:
            torch.save(self.model.state_dict(), tmp / "model.pt")
            torch.save({"edge_index": self.kg.edge_index, "edge_type": self.kg.edge_type, "num_nodes": self.kg.num_nodes,
                        "item_nodes": self.kg.item_nodes, "relations": self.kg.relations, "names": self.kg.names,
                        "sources": self.kg.sources}, tmp / "kg.pt")
            if self.comentions is not None:
                self.comentions.save(tmp / "comentions.json")
            if self.retriever is not None and self.retrieval_weight:
                shutil.copytree(self.retriever.directory, tmp / "context_encoder")  # the teacher stays self-contained
            (tmp / "teacher.json").write_text(json.dumps({"kind": "rec_teacher", "config": config, "item_ids": self.item_ids,
                                                          "encoder": self.encoder, "max_nodes": self.max_nodes,
                                                          "fusion_weight": self.fusion_weight,
                                                          "retrieval_weight": self.retrieval_weight}, indent=1))

    @classmethod
    def load(cls, directory, cache_dir: str | None = None) -> "RecTeacher":
        directory = Path(directory)
        meta = json.loads((directory / "teacher.json").read_text())
        g = torch.load(directory / "kg.pt", weights_only=False)
        kg = KnowledgeGraph(g["num_nodes"], g["item_nodes"], g["edge_index"], g["edge_type"], g["relations"], g["names"], g["sources"])
        cfg = meta["config"]
        model = RecTeacherModel(kg, meta["item_ids"], cfg["dim"], cfg["num_bases"], cfg["layers"],
                                384 if meta["encoder"] else 0, cfg["dropout"])
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        comentions = CoMentions.load(directory / "comentions.json") if (directory / "comentions.json").exists() else None
        retriever = ContextRetriever.load(directory / "context_encoder") if (directory / "context_encoder").is_dir() else None
        return cls(model, kg, meta["item_ids"], meta["encoder"], cache_dir or cfg.get("cache_dir"), meta["max_nodes"],
                   comentions=comentions, fusion_weight=meta.get("fusion_weight", 0.0),
                   retriever=retriever, retrieval_weight=meta.get("retrieval_weight", 0.0))


class ComposedRecTeacher:
    """A rec teacher made of trained ones over one catalog; subclasses say how their P(item | context) combine."""

    name = "rec_teacher"

    def __init__(self, teachers: list[RecTeacher]):
        if any(t.item_ids != teachers[0].item_ids for t in teachers):
            raise GencrsError(f"{type(self).__name__}: its teachers rank different catalogs")
        self.teachers, self.item_ids = teachers, teachers[0].item_ids

    def item_probs(self, contexts) -> torch.Tensor:
        raise NotImplementedError

    def rank(self, contexts, k: int) -> list[list[str]]:
        return top_items(self.item_probs(contexts), contexts, self.item_ids, k)


class CrossFittedRecTeacher(ComposedRecTeacher):
    """Rec teachers each trained without one fold of the train dialogues (`holdout_fold` of k, gencrs.data.splits):
    a context is read by the teacher that never saw its dialogue. On train contexts a single teacher partly recalls
    the dialogue's own targets (it learned from them); the cross-fitted one gives the distribution it would give an
    unseen dialogue, the one a student has to reproduce on valid and test."""

    def fold(self, context) -> int:
        """The fold of the context's dialogue (for a student's teacher-labelled twin of a turn: its source's)."""
        return fold_of(source_dialogue(context.key), len(self.teachers))

    def by_fold(self, contexts) -> dict[int, list[int]]:
        rows: dict[int, list[int]] = {}
        for n, context in enumerate(contexts):
            rows.setdefault(self.fold(context), []).append(n)
        return rows

    def item_probs(self, contexts) -> torch.Tensor:
        probs = torch.zeros(len(contexts), len(self.item_ids))
        for fold, rows in self.by_fold(contexts).items():
            probs[rows] = self.teachers[fold].item_probs([contexts[n] for n in rows])
        return probs

    def prepare(self, contexts) -> None:
        for fold, rows in self.by_fold(contexts).items():
            self.teachers[fold].prepare([contexts[n] for n in rows])

    @classmethod
    def load(cls, directories: list[str]) -> "CrossFittedRecTeacher":
        """`directories`: the OUT/teacher of fold 0, 1, .. k - 1, in that order (each checked against its config)."""
        teachers = []
        for fold, directory in enumerate(directories):
            cfg = json.loads((Path(directory) / "teacher.json").read_text())["config"]
            if (cfg.get("holdout_fold"), cfg.get("folds")) != (fold, len(directories)):
                raise GencrsError(f"rec_teacher_folds[{fold}] {directory} was trained with holdout_fold="
                                  f"{cfg.get('holdout_fold')} folds={cfg.get('folds')}, not holdout_fold={fold} "
                                  f"folds={len(directories)} (list the fold teachers in fold order)")
            teachers.append(RecTeacher.load(directory))
        return cls(teachers)


class RecTeacherEnsemble(ComposedRecTeacher):
    """The mean of several trained rec teachers' P(item | context): bagging, e.g. the full teacher and its fold
    teachers, each trained on other dialogues, which err in different places. Its directory holds only teacher.json
    (kind `rec_teacher_ensemble`) naming the members' directories (recipes/rec_teacher_ensemble.py writes it)."""

    KIND = "rec_teacher_ensemble"

    def item_probs(self, contexts) -> torch.Tensor:
        return torch.stack([t.item_probs(contexts) for t in self.teachers]).mean(0)

    def prepare(self, contexts) -> None:
        for teacher in self.teachers:
            teacher.prepare(contexts)

    @staticmethod
    def members(directory) -> list[str]:
        """The member directories of an ensemble's directory; [] for any other teacher (or no teacher.json)."""
        path = Path(directory) / "teacher.json"
        if not path.exists():
            return []
        meta = json.loads(path.read_text())
        return list(meta["members"]) if meta.get("kind") == RecTeacherEnsemble.KIND else []

    @classmethod
    def write(cls, directory, members: list[str]) -> "RecTeacherEnsemble":
        """Check that every member is a trained rec teacher over one catalog, then write the ensemble's teacher.json."""
        if len(members) < 2:
            raise GencrsError(f"a rec teacher ensemble needs at least 2 members, not {len(members)}")
        for member in members:
            if not (Path(member) / "teacher.json").exists() or cls.members(member):
                raise GencrsError(f"ensemble member {member} is not a trained rec teacher "
                                  "(a train_rec_teacher.py OUT/teacher with teacher.json)")
        ensemble = cls([RecTeacher.load(member) for member in members])
        with atomic_dir(directory) as tmp:
            (tmp / "teacher.json").write_text(json.dumps({"kind": cls.KIND, "members": list(members)}, indent=1))
        return ensemble

    @classmethod
    def load(cls, directory) -> "RecTeacherEnsemble":
        return cls([RecTeacher.load(member) for member in cls.members(directory)])


def load_rec_teacher(directory: str, folds: list[str] | tuple[str, ...] = ()):
    """The one loader of a rec teacher: the cross-fitted fold teachers when `folds` lists them, else the teacher in
    `directory` (a trained RecTeacher or a RecTeacherEnsemble)."""
    if folds:
        return CrossFittedRecTeacher.load(list(folds))
    if RecTeacherEnsemble.members(directory):
        return RecTeacherEnsemble.load(directory)
    return RecTeacher.load(directory)
