"""CLIP text tokenizer for detector packs (``tokenizers`` runtime, no transformers).

Reproduces what the OWL processors feed the text model: ``padding="max_length"`` to the pack's
token length (16), with the pad id recorded in the manifest (``!`` = 0 for the OWL checkpoints),
attention mask 1 on real tokens and 0 on padding. The reference processor does not truncate
(a phrase longer than 15 tokens makes the model fail); we truncate as
``truncation=True, max_length=16`` does: the first tokens and the end token are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.errors import InvalidArgument, PackError


class ClipTokenizer:
    """``phrases -> (input_ids, attention_mask)``, both ``(N, max_length)`` int64."""

    def __init__(self, path: Path, *, max_length: int, pad_id: int) -> None:
        from tokenizers import Tokenizer  # deferred: only a detector needs it

        if max_length < 2:
            raise PackError(f"Tokenizer max_length must be at least 2, got {max_length}.",
                            detail={"file": str(path)})
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 — the Rust side raises plain Exception
            raise PackError(f"The tokenizer file '{path}' cannot be read ({exc}). Re-install the "
                            "model pack.", detail={"file": str(path)}) from exc
        # Whatever padding the file carries is ignored: padding is ours, to the exact length.
        tok.no_padding()
        tok.enable_truncation(max_length=max_length)
        self._tok = tok
        self.max_length = int(max_length)
        self.pad_id = int(pad_id)
        self.path = Path(path)

    def __call__(self, phrases: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(phrases, str):
            raise InvalidArgument("phrases must be a list of strings, not one string.",
                                  detail={"field": "phrases"})
        for p in phrases:
            if not isinstance(p, str):
                raise InvalidArgument(f"Each phrase must be text, got {p!r}.",
                                      detail={"field": "phrases"})
        n, length = len(phrases), self.max_length
        ids = np.full((n, length), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.int64)
        for i, enc in enumerate(self._tok.encode_batch(list(phrases))):
            row = enc.ids[:length]
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return ids, mask

    def tokens(self, phrase: str) -> list[str]:
        """The BPE tokens of one phrase (for messages and debugging)."""
        return list(self._tok.encode(phrase).tokens)
