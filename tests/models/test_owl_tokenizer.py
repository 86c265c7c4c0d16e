"""Token ids of the runtime tokenizer (tokenizers + the pack's tokenizer.json + our padding) equal
the reference: transformers' CLIPTokenizer / OWL processor built from the checkpoint's
vocab.json + merges.txt, and an independent re-implementation of CLIP's BPE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.errors import InvalidArgument, PackError
from backend.models.tokenizer import ClipTokenizer
from tests.models.owl_fixtures import ReferenceBpe, export_tiny, owl_root, reference  # noqa: F401

pytestmark = pytest.mark.models

SHORT = ["a photo of a moth", "Moth", "  two   spaces\tand a TAB ", "it's a dog's life",
         "123 4567 moths", "green-leaf, dry!", "sticky trap", "x"]
ODD = ["café naïve", "日本 🐛", "", "a very long sticky trap with many small insects on the leaves "
       "and roots and stems of young seedlings"]


@pytest.fixture(scope="module")
def tok_setup(owl_root: Path) -> tuple[ClipTokenizer, object, object, ReferenceBpe]:  # noqa: F811
    ckpt, pack = export_tiny("owlv2", owl_root)
    _, processor, _ = reference("owlv2", ckpt)
    cfg = pack.config["tokenizer"]
    ours = ClipTokenizer(pack.file(cfg["file"]), max_length=cfg["max_length"], pad_id=cfg["pad_id"])
    return ours, processor, processor.tokenizer, ReferenceBpe(ckpt / "vocab.json", ckpt / "merges.txt")


def test_ids_equal_the_owl_processor(tok_setup) -> None:
    ours, processor, _, _ = tok_setup
    ids, mask = ours(SHORT)
    ref = processor(text=[SHORT], return_tensors="np")  # padding="max_length", as the model sees it
    assert ids.dtype == np.int64 and mask.dtype == np.int64 and ids.shape == (len(SHORT), 16)
    np.testing.assert_array_equal(ids, ref["input_ids"])
    np.testing.assert_array_equal(mask, ref["attention_mask"])


def test_ids_equal_clip_tokenizer_with_truncation(tok_setup) -> None:
    ours, _, clip, _ = tok_setup
    texts = SHORT + ODD
    ids, mask = ours(texts)
    ref = clip(texts, padding="max_length", max_length=16, truncation=True, return_tensors="np")
    np.testing.assert_array_equal(ids, ref["input_ids"])
    np.testing.assert_array_equal(mask, ref["attention_mask"])
    long_row = ids[-1]
    assert mask[-1].all(), "a long phrase fills all 16 positions"
    assert long_row[0] == clip.bos_token_id and long_row[-1] == clip.eos_token_id


def test_ids_equal_an_independent_bpe(tok_setup) -> None:
    """Same ids as CLIP's own BPE algorithm, except for '!': the OWL tokenizers register it as
    the pad token, so transformers (and we, from its tokenizer.json) read any '!' in a phrase as
    that special token (id 0) — see the next test."""
    ours, _, _, bpe = tok_setup
    texts = [t for t in SHORT + ODD if "!" not in t]
    ids, mask = ours(texts)
    for row, m, text in zip(ids, mask, texts, strict=True):
        ref_ids, ref_mask = bpe.encode(text, 16, pad_id=ours.pad_id)
        assert row.tolist() == ref_ids, text
        assert m.tolist() == ref_mask, text


def test_exclamation_mark_is_the_pad_token_as_in_transformers(tok_setup) -> None:
    ours, _, clip, bpe = tok_setup
    ids, _ = ours(["dry!"])
    assert ids[0, :4].tolist() == clip("dry!")["input_ids"]
    assert ids[0, 2] == 0 != bpe.encode("dry!")[0][2]


def test_end_token_is_the_highest_id(tok_setup) -> None:
    """The text model pools at argmax(input_ids): that must be the end token in every row."""
    ours, _, clip, _ = tok_setup
    ids, mask = ours(SHORT + ODD)
    ends = mask.sum(axis=1) - 1
    np.testing.assert_array_equal(ids.argmax(axis=1), ends)
    assert (ids[np.arange(len(ids)), ends] == clip.eos_token_id).all()
    assert (ids[mask == 0] == 0).all(), "padding is '!' (id 0), as the OWL tokenizers pad"


def test_bad_input_is_refused(tok_setup, tmp_path: Path) -> None:
    ours = tok_setup[0]
    with pytest.raises(InvalidArgument):
        ours("a moth")  # a bare string would silently become one phrase per character
    with pytest.raises(InvalidArgument):
        ours(["moth", 3])
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PackError, match="tokenizer.json"):
        ClipTokenizer(bad, max_length=16, pad_id=0)
