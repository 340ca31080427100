"""A typed graph over items and entities, for the recommendation teacher.

Sources, by dataset:
- redial: KGSF's DBpedia sub-KG (redial_kg/kgsf: movie id -> DBpedia entity, entity -> [relation, tail]) plus the item
  metadata already on the catalog (genres, directors, writers, stars from iEvaLM's id2info.json);
- inspired: the UniCRS-style DBpedia sub-KG (inspired_kg/unicrs); an item is linked to the entity whose DBpedia name is
  its title, "Title (Year film)" or "Title (film)";
- own data (a dataset directory, gencrs.data.files): its kg.jsonl triples when present; a head or tail that is a
  catalog id is that item's node, anything else an entity of that name;
- synthetic, or any dataset without KG files: the catalog metadata alone.
Always added: metadata edges (item -genre-> genre, item -director/writer/star-> person, item -NAME-> value for own
data's other catalog fields) and co-mention edges between items mentioned in the same train dialogue. Every relation also gets its inverse, so that information flows both ways.
DBpedia relations with fewer than `min_relation_edges` edges are merged into one "other" relation (kg.jsonl relations
are kept as given), and DBpedia and kg.jsonl entities linked to fewer than `min_entity_degree` distinct nodes are dropped (a leaf entity only repeats its one
neighbour's information, and dropping them makes the graph several times smaller).

Context linking (`link`): items by id; other entities by a whole-word, case-insensitive match of genre and person names
of the catalog metadata and of kg.jsonl entities (names of at least 4 characters) in the context text.
"""

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gencrs.data import Dataset


@dataclass
class KnowledgeGraph:
    num_nodes: int
    item_nodes: dict[str, int]  # every catalog item has a node
    edge_index: torch.Tensor  # (2, E) source -> target
    edge_type: torch.Tensor  # (E,)
    relations: list[str]
    names: dict[str, int] = field(default_factory=dict)  # lower-cased entity name -> node (for text linking)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.max_name_words = max((len(n.split()) for n in self.names), default=0)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    def link(self, text: str, items: list[str]) -> list[int]:
        nodes = [self.item_nodes[i] for i in items if i in self.item_nodes]
        if self.names:
            words = _normalize(text).split()
            for n in range(1, self.max_name_words + 1):  # names are normalized, so word n-grams find them
                nodes += [self.names[g] for g in (" ".join(words[i:i + n]) for i in range(len(words) - n + 1)) if g in self.names]
        return list(dict.fromkeys(nodes))


class _Builder:
    def __init__(self):
        self.node_of: dict[str, int] = {}
        self.edges: list[tuple[int, int, str]] = []

    def node(self, key: str) -> int:
        return self.node_of.setdefault(key, len(self.node_of))

    def edge(self, head: str, relation: str, tail: str) -> None:
        self.edges.append((self.node(head), self.node(tail), relation))


def _prune(b: _Builder, min_degree: int) -> _Builder:
    neighbours: dict[int, set] = {}
    for h, t, _ in b.edges:
        neighbours.setdefault(h, set()).add(t)
        neighbours.setdefault(t, set()).add(h)
    key_of = {n: k for k, n in b.node_of.items()}
    keep = {n for n, k in key_of.items() if not k.startswith(("dbpedia:", "entity:")) or len(neighbours.get(n, ())) >= min_degree}
    pruned = _Builder()
    for n in sorted(keep):
        pruned.node(key_of[n])
    pruned.edges = [(pruned.node_of[key_of[h]], pruned.node_of[key_of[t]], r) for h, t, r in b.edges if h in keep and t in keep]
    return pruned


def _normalize(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", name.lower()).split())


def build_kg(dataset: Dataset, data_dir: str | Path | None = None, min_relation_edges: int = 8000,
             min_entity_degree: int = 2) -> KnowledgeGraph:
    b = _Builder()
    for item_id in dataset.catalog:
        b.node(f"item:{item_id}")
    sources = ["metadata", "co-mentions"]
    names: dict[str, str] = {}
    for item in dataset.catalog.values():
        fields = [("genre", item.genres, "genre"), ("director", item.directors, "person"),
                  ("writer", item.writers, "person"), ("star", item.actors, "person"),
                  *((name, values, name) for name, values in item.attributes.items())]  # own data's other fields
        for relation, values, kind in fields:
            for value in values:
                b.edge(f"item:{item.id}", relation, f"{kind}:{value}")
                if len(_normalize(value)) >= 4:
                    names.setdefault(_normalize(value), f"{kind}:{value}")
    for mentions in dataset.train_mentions():
        items = list(dict.fromkeys(mentions))
        for a, c in zip(items, items[1:]):  # consecutive mentions: a chain, not a clique (cliques explode)
            b.edge(f"item:{a}", "co_mention", f"item:{c}")
    if dataset.kg:
        def key(name: str) -> str:
            return f"item:{name}" if name in dataset.catalog else f"entity:{name}"
        for head, relation, tail in dataset.kg:
            b.edge(key(head), f"kg:{relation}", key(tail))
            for name in (head, tail):
                if name not in dataset.catalog and len(_normalize(name)) >= 4:
                    names.setdefault(_normalize(name), key(name))
        sources.append(f"{dataset.path}/kg.jsonl ({len(dataset.kg)} triples)")
    root = Path(data_dir) if data_dir and dataset.path is None else None  # own data brings its graph in kg.jsonl
    if root and dataset.name.startswith("redial") and (root / "redial_kg" / "kgsf" / "subkg.json").exists():
        _add_kgsf(b, dataset, root / "redial_kg" / "kgsf")
        sources.append("KGSF DBpedia sub-KG")
    elif root and dataset.name.startswith("inspired") and (root / "inspired_kg" / "unicrs" / "dbpedia_subkg.json").exists():
        linked = _add_unicrs(b, dataset, root / "inspired_kg" / "unicrs")
        sources.append(f"UniCRS DBpedia sub-KG ({linked} items linked by title)")
    b = _prune(b, min_entity_degree)
    counts = Counter(r for _, _, r in b.edges)
    keep = {r for r, c in counts.items() if c >= min_relation_edges or not r.startswith("dbpedia:")}
    relations = sorted({r if r in keep else "dbpedia:other" for r in counts})
    rel_id = {r: n for n, r in enumerate(relations)}
    heads, tails, types = [], [], []
    for h, t, r in b.edges:
        r = rel_id[r if r in keep else "dbpedia:other"]
        heads += [h, t]
        tails += [t, h]
        types += [2 * r, 2 * r + 1]  # each relation and its inverse
    return KnowledgeGraph(
        num_nodes=len(b.node_of),
        item_nodes={i: b.node_of[f"item:{i}"] for i in dataset.catalog},
        edge_index=torch.tensor([heads, tails], dtype=torch.long),
        edge_type=torch.tensor(types, dtype=torch.long),
        relations=[name for r in relations for name in (r, f"{r}^-1")],
        names={name: b.node_of[key] for name, key in names.items() if key in b.node_of},  # pruned entities are gone
        sources=sources,
    )


def _add_kgsf(b: _Builder, dataset: Dataset, folder: Path) -> None:
    id2entity = json.loads((folder / "id2entity.json").read_text())
    entity_id = json.loads((folder / "entity2entityId.json").read_text())
    subkg = json.loads((folder / "subkg.json").read_text())
    node_of_entity = {}
    for item_id in dataset.catalog:
        uri = id2entity.get(item_id)
        if uri and uri in entity_id:
            node_of_entity[entity_id[uri]] = f"item:{item_id}"
    for head, edges in subkg.items():
        for relation, tail in edges:
            b.edge(node_of_entity.get(int(head), f"dbpedia:{head}"), f"dbpedia:{relation}",
                   node_of_entity.get(int(tail), f"dbpedia:{tail}"))


def _add_unicrs(b: _Builder, dataset: Dataset, folder: Path) -> int:
    entity_id = json.loads((folder / "entity2id.json").read_text())
    relation_name = {v: k for k, v in json.loads((folder / "relation2id.json").read_text()).items()}
    by_name = {uri.rsplit("/", 1)[-1].rstrip(">"): eid for uri, eid in entity_id.items()}
    node_of_entity = {}
    for item in dataset.catalog.values():
        base = item.title.replace(" ", "_")
        for candidate in ([f"{base}_({item.year}_film)"] if item.year else []) + [f"{base}_(film)", base]:
            if candidate in by_name:
                node_of_entity[by_name[candidate]] = f"item:{item.id}"
                break
    subkg = json.loads((folder / "dbpedia_subkg.json").read_text())
    for head, edges in subkg.items():
        for relation, tail in edges:
            if relation_name.get(relation) == "self_loop":
                continue
            b.edge(node_of_entity.get(int(head), f"dbpedia:{head}"), f"dbpedia:{relation}",
                   node_of_entity.get(int(tail), f"dbpedia:{tail}"))
    return len(node_of_entity)
