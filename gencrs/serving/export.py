"""Export a trained gencrs model as one servable HF directory.

vLLM's LoRA serving cannot carry new token rows (STACK.md), so an adapter is merged into its base: the extended
embeddings and lm_head are saved with the merged weights. Beside the weights: the tokenizer (with its chat template),
codes.json (the code table) and catalog.json (item id -> title), which the serving processor and gencrs.client read.
"""

import logging
from pathlib import Path

from gencrs import model_dir as model_files
from gencrs.io import atomic_dir
from gencrs.model import load_trained, resolve_dtype

log = logging.getLogger(__name__)


def export_model(model_dir: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Loaded in the export's dtype (never 4-bit: the adapter merges into full-precision base weights)."""
    model, tokenizer, codebook = load_trained(model_dir, dtype=dtype)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(resolve_dtype(dtype))
    titles = model_files.read_titles(model_dir)
    with atomic_dir(Path(out)) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        model_files.write(tmp, codebook, titles, export={"source": str(model_dir), "dtype": dtype},
                          context_codes=model_files.reads_context_codes(model_dir))
    log.info("exported %s to %s (%d tokens in the vocabulary)", model_dir, out, len(tokenizer))
    return Path(out)
