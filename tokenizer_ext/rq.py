"""Residual quantization with k-means (RQ-KMeans) and collision resolution.

Level l clusters the residuals left by levels < l into K centroids (faiss k-means, seeded). An item's code is the
tuple of its nearest centroid at each level.

Collisions (items with the same full code tuple) are resolved by reassignment: within each colliding group the item
closest to the shared last-level centroid keeps the code; every other item, in order of that distance, moves to the
nearest last-level centroid whose code is still unused under the same prefix. If all K codes under that prefix are
taken, it keeps one level less of its prefix and takes the nearest free tuple below it (levels searched in order of
distance to the item's residual), and so on up to the root. Code length stays L, so every item is exactly L tokens, and
the search always succeeds when the catalog has at most K^L items (checked up front).
"""

from collections import defaultdict
from dataclasses import dataclass

import faiss
import numpy as np

from tokenizer_ext.errors import SemanticIdError


@dataclass
class Quantized:
    codes: np.ndarray  # (n_items, levels) int64, unique rows
    centroids: np.ndarray  # (levels, K, dim) float32
    stats: dict


def kmeans(x: np.ndarray, k: int, seed: int, niter: int = 25) -> np.ndarray:
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, min_points_per_centroid=1,
                      max_points_per_centroid=1 << 30, verbose=False)
    km.train(np.ascontiguousarray(x, dtype=np.float32))
    return km.centroids


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(x, dtype=np.float32), 1)[1][:, 0]


def residual_kmeans(x: np.ndarray, levels: int, k: int, seed: int = 0, progress=None) -> Quantized:
    n, dim = x.shape
    if k > n:
        raise SemanticIdError(f"{k} codes per level is more than the {n} items: choose codes <= {n}")
    if k ** levels < n:
        raise SemanticIdError(f"catalog of {n} items does not fit {levels} levels x {k} codes ({k ** levels} code tuples): "
                          "raise levels or codes")
    residual = x.astype(np.float32).copy()
    codes = np.zeros((n, levels), dtype=np.int64)
    centroids = np.zeros((levels, k, dim), dtype=np.float32)
    base_energy = float((x ** 2).sum(1).mean())
    level_error = []
    for level in range(levels):
        centroids[level] = kmeans(residual, k, seed=seed + level)
        codes[:, level] = nearest(residual, centroids[level])
        residual -= centroids[level][codes[:, level]]
        level_error.append(float((residual ** 2).sum(1).mean()))
        if progress:
            progress.update(1)
    stats = {"collisions_before": int(n - len({tuple(c) for c in codes})),
             "items_in_collisions_before": _items_in_collisions(codes)}
    codes, moved = resolve_collisions(x, codes, centroids)
    final_residual = x - sum(centroids[l][codes[:, l]] for l in range(levels))
    stats.update({
        "items": n, "levels": levels, "codes_per_level": k,
        "collisions_after": int(n - len({tuple(c) for c in codes})),
        "items_moved_by_resolution": moved,
        "utilization_per_level": [len(set(codes[:, l].tolist())) / k for l in range(levels)],
        "relative_error_per_level_before_resolution": [e / base_energy for e in level_error],
        "reconstruction_mse": float((final_residual ** 2).sum(1).mean()),
        "relative_reconstruction_error": float((final_residual ** 2).sum(1).mean()) / base_energy,
    })
    return Quantized(codes, centroids, stats)


def _items_in_collisions(codes: np.ndarray) -> int:
    groups = defaultdict(int)
    for c in map(tuple, codes):
        groups[c] += 1
    return int(sum(v for v in groups.values() if v > 1))


def resolve_collisions(x: np.ndarray, codes: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, int]:
    """Give every item a unique code tuple, moving as little as possible (see the module docstring)."""
    codes = codes.copy()
    levels = codes.shape[1]
    used: set[tuple] = set()
    groups = defaultdict(list)
    for i, c in enumerate(map(tuple, codes)):
        groups[c].append(i)
    used.update(groups)
    moved = 0
    for code, members in sorted(groups.items()):
        if len(members) == 1:
            continue
        last_residual = {i: x[i] - sum(centroids[l][code[l]] for l in range(levels - 1)) for i in members}
        members = sorted(members, key=lambda i: (float(((last_residual[i] - centroids[-1][code[-1]]) ** 2).sum()), i))
        for i in members[1:]:
            # keep the longest prefix that still has a free code tuple below it
            for keep in range(levels - 1, -1, -1):
                placed = _nearest_free(x[i], centroids, used, code[:keep])
                if placed is not None:
                    break
            codes[i] = placed
            used.add(placed)
            moved += 1
    return codes, moved


def _nearest_free(x: np.ndarray, centroids: np.ndarray, used: set[tuple], prefix: tuple) -> tuple | None:
    """Depth-first over the codes below `prefix`, each level in order of distance to the item's residual."""
    level = len(prefix)
    residual = x - sum((centroids[l][c] for l, c in enumerate(prefix)), np.zeros_like(x))
    order = np.argsort(((residual[None, :] - centroids[level]) ** 2).sum(-1), kind="stable")
    for c in order:
        candidate = (*prefix, int(c))
        if level == centroids.shape[0] - 1:
            if candidate not in used:
                return candidate
        else:
            found = _nearest_free(x, centroids, used, candidate)
            if found is not None:
                return found
    return None
