"""How much each level of a semantic-ID table says about the targets, as a rec teacher reads the context: the measure
by which semantic-ID options are chosen on valid before a dialogue teacher and a student are trained on them.

    python -m eval codes rec_teacher=DIR semantic_ids=[DIR_A,DIR_B] dataset=inspired split=valid

For each target of the protocol's instances and each level l, the probability of the target's code given its gold
prefix under (a) the rec teacher's code distribution (gencrs.teachers.outputs.code_distributions: what the student
distils at that code position; the context's items excluded, as the recommender protocol ranks) and (b) the trie
prior, P(code | prefix) = items under prefix+code / items under prefix (what a model that knows only the catalog can
say). Per level: the mean of each probability (`teacher_p`, `prior_p`: the expected accuracy of a draw), their ratio
(`lift`), the share of targets whose code is the teacher's most probable one (`teacher_top1`) and the mean
cross-entropies (`teacher_ce`, `prior_ce`). Summed over levels the cross-entropies are the item-level ones for every
table (the chain rule; the prior's sum is log N): a table decides how the teacher's information is split over the
levels, not how much there is. The mean cross-entropy is dominated by the targets a sharp teacher misses, so tables
are compared by `lift` at level 1.
"""

from dataclasses import dataclass, field

import torch

from gencrs.data import load_dataset
from gencrs.data.protocols import contexts_of, select_instances
from gencrs.teachers.outputs import code_distributions, excluded_item_probs, item_code_tensor
from gencrs.teachers.rec import load_rec_teacher
from tokenizer_ext.codebook import CodeBook


@dataclass
class CodesConfig:
    rec_teacher: str = "???"  # a rec teacher directory (its `teacher/`)
    semantic_ids: list[str] = field(default_factory=list)  # semantic-ID directories over the same catalog
    dataset: str = "inspired"
    data_dir: str | None = None
    split: str = "valid"
    protocol: str = "recommender"


def level_probabilities(item_probs: torch.Tensor, item_codes: torch.Tensor, target: int,
                        codes_per_level: int) -> tuple[list, list]:
    """Per level: the probability of the target's code given its gold prefix, and whether it is the most probable."""
    gold = tuple(item_codes[target].tolist())
    dists = code_distributions(item_probs, item_codes, [gold], codes_per_level)
    return ([float(dists[level, code]) for level, code in enumerate(gold)],
            [float(dists[level].argmax() == code) for level, code in enumerate(gold)])


def code_information(cfg: CodesConfig) -> dict:
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    instances = select_instances(dataset, cfg.split, cfg.protocol)
    teacher = load_rec_teacher(cfg.rec_teacher)
    contexts = contexts_of(instances)
    teacher.prepare(contexts)
    probs = dict(zip((c.key for c in contexts), excluded_item_probs(teacher, contexts)))
    index = {item: n for n, item in enumerate(teacher.item_ids)}
    uniform = torch.ones(len(teacher.item_ids))
    out = {"instances": len(instances), "rec_teacher": cfg.rec_teacher, "tables": {}}
    for directory in cfg.semantic_ids:
        codebook = CodeBook.load(directory)
        item_codes = item_code_tensor(codebook, teacher.item_ids)
        teacher_p, teacher_top1, prior_p = [], [], []
        for instance in instances:
            target = index[instance.label]
            levels_p, top1 = level_probabilities(probs[instance.context.key], item_codes, target,
                                                 codebook.codes_per_level)
            teacher_p.append(levels_p)
            teacher_top1.append(top1)
            prior_p.append(level_probabilities(uniform, item_codes, target, codebook.codes_per_level)[0])
        teacher_p, prior_p = torch.tensor(teacher_p), torch.tensor(prior_p)
        mean = lambda x: [round(v, 4) for v in x.mean(0).tolist()]  # noqa: E731
        out["tables"][directory] = {
            "teacher_p": mean(teacher_p), "prior_p": mean(prior_p),
            "lift": [round(t / q, 3) for t, q in zip(teacher_p.mean(0).tolist(), prior_p.mean(0).tolist())],
            "teacher_top1": mean(torch.tensor(teacher_top1)),
            "teacher_ce": mean(-teacher_p.clamp_min(1e-12).log()), "prior_ce": mean(-prior_p.log()),
        }
    return out  # the command line prints it as JSON
