"""Shared helpers for the OWL detector tests: tiny packs, test images, transformers references.

Packs are exported once per test session (module-level cache under a session temp folder) from
tiny random checkpoints written by the exporter's ``save_random_checkpoint``; the reference is
transformers loaded from that same checkpoint folder.
"""

from __future__ import annotations

import json
import os
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models.images import make_image  # noqa: F401  (re-exported for the tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FAMILIES = ("owlvit", "owlv2")
SEED = 0
# Non-square, both orientations; the last one is > 2x the tiny model input (anti-aliasing path).
SIZES = ((110, 150), (150, 110), (260, 190))

_packs: dict[tuple[str, bool], tuple[Path, Any]] = {}


def export_tiny(family: str, root: Path, *, quantize: bool = False) -> tuple[Path, Any]:
    """(checkpoint folder, Pack) for a tiny random ``family`` model, exported once per session."""
    key = (family, quantize)
    if key not in _packs:
        from build_scripts.exporters import owl

        ckpt = root / f"ckpt-{family}"
        if not (ckpt / "config.json").is_file():
            owl.save_random_checkpoint(family, "tiny", SEED, ckpt)
        out = root / f"pack-{family}{'-int8' if quantize else ''}"
        pack = owl.export(family=family, checkpoint=str(ckpt), random=None, out=out,
                          quantize=quantize, seed=SEED, pack_id=f"{family}-tiny-test",
                          version="0.0.1")
        _packs[key] = (ckpt, pack)
    return _packs[key]


@pytest.fixture(scope="session")
def owl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return tmp_path_factory.getbasetemp() / "owl-packs"


@lru_cache(maxsize=4)
def reference(family: str, ckpt: Path) -> tuple[Any, Any, Any]:
    """(model, processor, image processor) from transformers, for the checkpoint folder."""
    import transformers as tf
    from transformers.models.owlv2 import Owlv2ImageProcessorPil
    from transformers.models.owlvit import OwlViTImageProcessorPil

    model_cls = tf.Owlv2ForObjectDetection if family == "owlv2" else tf.OwlViTForObjectDetection
    proc_cls = tf.Owlv2Processor if family == "owlv2" else tf.OwlViTProcessor
    image_proc_cls = Owlv2ImageProcessorPil if family == "owlv2" else OwlViTImageProcessorPil
    image_proc = image_proc_cls.from_pretrained(str(ckpt))
    tokenizer = tf.CLIPTokenizer(vocab=str(ckpt / "vocab.json"), merges=str(ckpt / "merges.txt"),
                                 pad_token="!", model_max_length=16)
    processor = proc_cls(image_processor=image_proc, tokenizer=tokenizer)
    model = model_cls.from_pretrained(str(ckpt)).eval()
    return model, processor, image_proc


def safe_threshold(scores: np.ndarray, target: float, gap: float = 1e-3) -> float:
    """A threshold near ``target`` with no score within ``gap`` of it (no float-noise flips)."""
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    t = float(target)
    while np.any(np.abs(s - t) < gap):
        t += gap
    return t


# --- an independent CLIP BPE (OpenAI's simple_tokenizer algorithm; NFC instead of ftfy) ---------

class ReferenceBpe:
    """Byte-level BPE by merge rank, as openai/CLIP ``simple_tokenizer.py`` does it."""

    def __init__(self, vocab_file: Path, merges_file: Path) -> None:
        import regex

        from build_scripts.exporters.owl import _bytes_to_unicode

        self.encoder: dict[str, int] = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        lines = Path(merges_file).read_text(encoding="utf-8").splitlines()[1:]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(lines) if m}
        self.byte_encoder = _bytes_to_unicode()
        self.pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
                                 r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    def _bpe(self, token: str) -> list[str]:
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text: str, length: int = 16, pad_id: int = 0) -> tuple[list[int], list[int]]:
        text = " ".join(unicodedata.normalize("NFC", text).split()).lower()
        ids = [self.encoder["<|startoftext|>"]]
        for tok in self.pat.findall(text):
            mapped = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids += [self.encoder[t] for t in self._bpe(mapped)]
        ids = ids[:length - 1] + [self.encoder["<|endoftext|>"]]
        mask = [1] * len(ids) + [0] * (length - len(ids))
        return ids + [pad_id] * (length - len(ids)), mask
