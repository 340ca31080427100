"""Serving: export of a trained model to a servable directory, and the vLLM logits processor."""
