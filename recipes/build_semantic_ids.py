"""Semantic IDs for a dataset's catalog: item text -> sentence embedding -> residual k-means -> collision-free codes.

    python recipes/build_semantic_ids.py                                          # synthetic: 3 levels x 16 codes
    python recipes/build_semantic_ids.py dataset=redial out=runs/semantic_ids_redial codes_per_level=256

Writes OUT/codes.json, quantizer.npz, stats.json and manifest.json (docs/semantic_ids.md) and prints the statistics.
"""

import sys

from gencrs.cli import run_recipe
from gencrs.semantic_ids import SemanticIdConfig, build_semantic_ids
from tokenizer_ext.build import format_summary


def main(cfg: SemanticIdConfig) -> dict:
    stats = build_semantic_ids(cfg).stats
    print(format_summary(stats))
    return {"out": cfg.out, "items": stats["items"], "collisions_after": stats["collisions_after"]}


if __name__ == "__main__":
    sys.exit(run_recipe("build_semantic_ids", SemanticIdConfig, main))
