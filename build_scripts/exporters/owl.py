"""Export OWL-ViT / OWLv2 (transformers) to a Fieldmark detector pack: two ONNX graphs + tokenizer.

Graph split (docs/adr/0003-detector-graph-split.md): the expensive encoders run in ONNX, the cheap
class head (dot product, logit shift/scale, sigmoid), thresholds and NMS run in numpy, so a prompt
or threshold change re-scores cached image embeddings without an encoder pass.

``text_encoder.onnx``   input_ids (N, L) int64, attention_mask (N, L) int64
                        -> text_embeds (N, D) float32, L2-normalized (the model's ``text_embeds``)
``image_encoder.onnx``  pixel_values (1, 3, S, S) float32
                        -> class_embeds (1, P, D) = dense0(x) / (|dense0(x)| + 1e-6), exactly the
                             vectors the class head dots with the query
                           class_embeds_norm (1, P, 1) = |dense0(x)| (the OWL-ViT image-query
                             selection compares raw, unnormalized embeddings)
                           logit_shift (1, P, 1), logit_scale (1, P, 1) (ELU + 1 already applied)
                           pred_boxes (1, P, 4) cxcywh in [0, 1] of the model input
                           objectness (1, P) logits — OWLv2 only
Everything "find more like this" needs (image-guided detection) is in these outputs, so an example
box on an already encoded image needs no second encoder pass.

Random checkpoints (``--random tiny|full``) get a CLIP-style byte-level BPE tokenizer built here
from a small word list, and a re-initialized head so scores spread out instead of saturating.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend import atomic
from backend.models.pack import Pack, write_pack
from build_scripts.exporters.quantize import quantize_graphs

OPSET = 17
TOKEN_LENGTH = 16
LICENSE = "Apache-2.0"  # google/owlvit-* and google/owlv2-* checkpoints
_TINY = {
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2, "max_position_embeddings": TOKEN_LENGTH},
    # Vision width differs from text width on purpose: a swapped dimension fails loudly.
    "vision": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
               "num_attention_heads": 2, "image_size": 96, "patch_size": 8},
    "projection_dim": 32,
}
_FULL_IMAGE_SIZE = {"owlvit": 768, "owlv2": 960}  # B/32 @ 768 and B/16 @ 960, as released
_WORDS = ("a photo of the an and with on in at this that cat cats dog dogs moth moths seedling "
          "seedlings leaf leaves plant plants flower flowers insect insects bird birds person "
          "people car cars tree trees fruit apple apples bottle cup chair table fish mushroom "
          "wing wings beetle bee bees ant spider snail root roots stem seed seeds weed weeds "
          "grass soil rock stone water sky red green blue yellow white black brown small large "
          "big tiny young old dry wet dead alive open closed sticky trap label box").split()


# --- tokenizer (random checkpoints only: real checkpoints ship their own) ----------------------

def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's / GPT-2's reversible byte -> printable unicode table (same order as CLIP)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def build_clip_bpe(out_dir: Path, n_merges: int = 160) -> tuple[Path, Path]:
    """Learn a small CLIP-layout BPE on :data:`_WORDS`; write ``vocab.json`` and ``merges.txt``.

    Layout as CLIP's: 256 byte symbols, the same with ``</w>``, one token per merge, then
    ``<|startoftext|>`` and ``<|endoftext|>`` last — the text model pools at the argmax token id,
    which must be the end token. ``!`` is id 0 (the OWL tokenizers' pad token).
    """
    table = _bytes_to_unicode()
    base = list(table.values())
    words = Counter()
    for i, w in enumerate(_WORDS):
        sym = [table[b] for b in w.encode("utf-8")]
        words[tuple(sym[:-1] + [sym[-1] + "</w>"])] += 1 + (i % 3)  # uneven counts: real ranks
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:], strict=False):
                pairs[(a, b)] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # deterministic tie-break
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    tokens = base + [b + "</w>" for b in base] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    vocab_file, merges_file = out_dir / "vocab.json", out_dir / "merges.txt"
    atomic.write_text(vocab_file, json.dumps(vocab, ensure_ascii=False))
    atomic.write_text(merges_file, "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return vocab_file, merges_file


def make_tokenizer(vocab_file: Path, merges_file: Path) -> Any:
    """The transformers CLIPTokenizer the OWL processors use (pad ``!``, max length 16)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file), pad_token="!",
                         model_max_length=TOKEN_LENGTH)


# --- models -------------------------------------------------------------------------------------

def _classes(family: str) -> tuple[Any, Any, Any, Any]:
    import transformers as tf
    from transformers.models.owlv2 import Owlv2ImageProcessorPil
    from transformers.models.owlvit import OwlViTImageProcessorPil

    if family == "owlvit":
        return tf.OwlViTConfig, tf.OwlViTForObjectDetection, OwlViTImageProcessorPil, tf.OwlViTProcessor
    if family == "owlv2":
        return tf.Owlv2Config, tf.Owlv2ForObjectDetection, Owlv2ImageProcessorPil, tf.Owlv2Processor
    raise ValueError(f"family must be 'owlvit' or 'owlv2', got {family!r}")


@torch.no_grad()
def _spread_head(model: nn.Module, family: str, gen: torch.Generator) -> None:
    """Re-initialize the heads so a random model's scores spread over (0, 1) and boxes vary.

    With the default init the logit shift/scale heads give logits that sit in a narrow band (or
    saturate once the encoder is scaled up), so every patch scores the same and a parity test
    compares constants. Trained OWL heads have a negative shift and a scale of several units.
    """
    def normal_(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    width = model.config.vision_config.hidden_size
    # transformers leaves the head Linears at std 1.0 (no initializer_range on the top config):
    # activations grow by sqrt(width) per layer and boxes/objectness saturate. Unit-gain init.
    heads = [model.class_head, model.box_head] + ([model.objectness_head] if family == "owlv2" else [])
    for module in heads:
        for lin in module.modules():
            if isinstance(lin, nn.Linear):
                normal_(lin.weight, 1.0 / math.sqrt(lin.in_features))
                lin.bias.zero_()
    head = model.class_head
    normal_(head.logit_shift.weight, 0.25 / math.sqrt(width))
    head.logit_shift.bias.fill_(-0.35)
    normal_(head.logit_scale.weight, 1.0 / math.sqrt(width))
    head.logit_scale.bias.fill_(5.0)
    box = model.box_head.dense2
    normal_(box.weight, 0.6 / math.sqrt(width))
    box.bias.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]))  # boxes ~2.5 patches wide: real overlaps
    if family == "owlv2":
        obj = model.objectness_head.dense2
        normal_(obj.weight, 2.0 / math.sqrt(width))
        obj.bias.fill_(-1.0)


def build_random(family: str, size: str, seed: int, vocab_size: int) -> nn.Module:
    """A random-weight detection model: ``tiny`` for tests, ``full`` = released B-size configs."""
    config_cls, model_cls, _, _ = _classes(family)
    if size == "tiny":
        # CLIP layout: the last two ids are <|startoftext|>, <|endoftext|>.
        text = dict(_TINY["text"], vocab_size=vocab_size, bos_token_id=vocab_size - 2,
                    eos_token_id=vocab_size - 1)
        config = config_cls(text_config=text, vision_config=dict(_TINY["vision"]),
                            projection_dim=_TINY["projection_dim"])
    elif size == "full":
        config = config_cls(vision_config={"image_size": _FULL_IMAGE_SIZE[family]})
    else:
        raise ValueError(f"random must be 'tiny' or 'full', got {size!r}")
    torch.manual_seed(seed)
    model = model_cls(config)
    gen = torch.Generator().manual_seed(seed + 1)
    _spread_head(model, family, gen)
    return model.eval()


def save_random_checkpoint(family: str, size: str, seed: int, folder: Path) -> Path:
    """Write a complete ``save_pretrained`` checkpoint (model, tokenizer, image processor)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok = make_tokenizer(*build_clip_bpe(Path(tmp)))
        model = build_random(family, size, seed, vocab_size=len(tok) if size == "tiny" else 49408)
        _, _, image_proc_cls, processor_cls = _classes(family)
        s = model.config.vision_config.image_size
        processor_cls(image_processor=image_proc_cls(size={"height": s, "width": s}),
                      tokenizer=tok).save_pretrained(folder)
        # The slow tokenizer files too: the parity tests build the reference from them.
        shutil.copy(Path(tmp) / "vocab.json", folder / "vocab.json")
        shutil.copy(Path(tmp) / "merges.txt", folder / "merges.txt")
    model.save_pretrained(folder)
    return folder


# --- graphs -------------------------------------------------------------------------------------

class TextEncoder(nn.Module):
    """input_ids, attention_mask (N, L) -> (N, D) L2-normalized query embeddings."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.base = model.owlv2 if hasattr(model, "owlv2") else model.owlvit

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.base.text_model(input_ids=input_ids, attention_mask=attention_mask)
        emb = self.base.text_projection(out.pooler_output)
        return emb / torch.linalg.norm(emb, ord=2, dim=-1, keepdim=True)


class ImageEncoder(nn.Module):
    """pixel_values (1, 3, S, S) -> the per-patch tensors the class/box heads use (module doc)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.objectness = hasattr(model, "objectness_head")

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feature_map = self.model.image_embedder(pixel_values=pixel_values)[0]
        b, gh, gw, width = feature_map.shape
        feats = feature_map.reshape(b, gh * gw, width)
        head = self.model.class_head
        raw = head.dense0(feats)
        norm = torch.linalg.norm(raw, dim=-1, keepdim=True)
        outs = (raw / (norm + 1e-6), norm, head.logit_shift(feats),
                head.elu(head.logit_scale(feats)) + 1, self.model.box_predictor(feats, feature_map))
        if self.objectness:
            outs += (self.model.objectness_predictor(feats),)
        return outs


def _io(family: str, n_patches: int, dim: int, size: int) -> dict[str, Any]:
    f32, i64 = "float32", "int64"
    image_out = {"class_embeds": {"shape": [1, n_patches, dim], "dtype": f32},
                 "class_embeds_norm": {"shape": [1, n_patches, 1], "dtype": f32},
                 "logit_shift": {"shape": [1, n_patches, 1], "dtype": f32},
                 "logit_scale": {"shape": [1, n_patches, 1], "dtype": f32},
                 "pred_boxes": {"shape": [1, n_patches, 4], "dtype": f32}}
    if family == "owlv2":
        image_out["objectness"] = {"shape": [1, n_patches], "dtype": f32}
    return {"graphs": {
        "text_encoder": {"file": "text_encoder.onnx",
                         "inputs": {"input_ids": {"shape": ["N", TOKEN_LENGTH], "dtype": i64},
                                    "attention_mask": {"shape": ["N", TOKEN_LENGTH], "dtype": i64}},
                         "outputs": {"text_embeds": {"shape": ["N", dim], "dtype": f32}}},
        "image_encoder": {"file": "image_encoder.onnx",
                          "inputs": {"pixel_values": {"shape": [1, 3, size, size], "dtype": f32}},
                          "outputs": image_out}}}


def _export_graphs(model: nn.Module, family: str, out: Path) -> None:
    size = model.config.vision_config.image_size
    ids = torch.ones((2, TOKEN_LENGTH), dtype=torch.int64)
    ids[:, -1] = 2  # any ids; argmax pooling just needs a valid index
    with torch.no_grad(), warnings.catch_warnings():
        # Known and harmless: the causal-mask code's shape test is a constant for our fixed
        # token length; the pooling index is never negative; the classic exporter is deprecated
        # but chosen on purpose (ADR 0003).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index")
        torch.onnx.export(TextEncoder(model).eval(), (ids, torch.ones_like(ids)),
                          str(out / "text_encoder.onnx"), dynamo=False, opset_version=OPSET,
                          input_names=["input_ids", "attention_mask"], output_names=["text_embeds"],
                          dynamic_axes={"input_ids": {0: "N"}, "attention_mask": {0: "N"},
                                        "text_embeds": {0: "N"}})
        names = list(_io(family, 0, 0, 0)["graphs"]["image_encoder"]["outputs"])
        torch.onnx.export(ImageEncoder(model).eval(), (torch.zeros((1, 3, size, size)),),
                          str(out / "image_encoder.onnx"), dynamo=False, opset_version=OPSET,
                          input_names=["pixel_values"], output_names=names)


# --- the exporter -------------------------------------------------------------------------------

def _preprocessing(family: str, proc: Any, size: int) -> dict[str, Any]:
    got = (proc.size["height"], proc.size["width"])
    if got != (size, size):
        raise ValueError(f"image processor size {got} does not match the model's {size}x{size}")
    if not (proc.do_resize and proc.do_rescale and proc.do_normalize):
        raise ValueError("the image processor must resize, rescale and normalize (OWL defaults)")
    common = {"image_size": size, "rescale_factor": float(proc.rescale_factor),
              "mean": [float(v) for v in proc.image_mean], "std": [float(v) for v in proc.image_std]}
    if family == "owlvit":
        if getattr(proc, "do_center_crop", False) and proc.crop_size != proc.size:
            raise ValueError("center crop to a different size than the resize is not supported")
        return dict(common, method="squash", resample=_resample_name(proc.resample))
    if not getattr(proc, "do_pad", True):
        raise ValueError("OWLv2 without padding to a square is not supported")
    return dict(common, method="pad_square_gaussian_linear", pad_value=0.0)


def _resample_name(resample: Any) -> str:
    names = {0: "nearest", 2: "bilinear", 3: "bicubic", 1: "lanczos"}
    try:
        return names[int(resample)]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unsupported resample {resample!r}") from exc


def _default_id(family: str, checkpoint: str | None, random: str | None) -> str:
    if random:
        return f"{family}-{random}-random"
    name = Path(str(checkpoint).rstrip("/")).name.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", name).strip("-._") or family


def export(*, family: str, checkpoint: str | None, random: str | None, out: Path,
           quantize: bool = False, seed: int = 0, pack_id: str | None = None,
           version: str = "1.0.0") -> Pack:
    import transformers

    _, model_cls, image_proc_cls, _ = _classes(family)
    transformers.utils.logging.disable_progress_bar()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(checkpoint) if checkpoint else save_random_checkpoint(family, random or "tiny",
                                                                         seed, Path(tmp) / "ckpt")
        # eager attention: the classic exporter traces it; sdpa masks trace less reliably.
        model = model_cls.from_pretrained(str(src), attn_implementation="eager").eval()
        if model.config.model_type != family:
            raise ValueError(f"checkpoint {src} is a {model.config.model_type!r} model, "
                             f"not {family!r}")
        proc = image_proc_cls.from_pretrained(str(src))
        tok = transformers.AutoTokenizer.from_pretrained(str(src))
        tok.backend_tokenizer.save(str(out / "tokenizer.json"))
        _export_graphs(model, family, out)
    if quantize:
        quantize_graphs(out, ("text_encoder.onnx", "image_encoder.onnx"))
    vc = model.config.vision_config
    grid = vc.image_size // vc.patch_size
    dim = model.config.text_config.hidden_size
    max_len = min(int(tok.model_max_length), model.config.text_config.max_position_embeddings)
    if max_len != TOKEN_LENGTH:
        raise ValueError(f"token length {max_len} is not the {TOKEN_LENGTH} the graphs take")
    if tok.pad_token_id is None or tok.eos_token_id != max(tok.get_vocab().values()):
        raise ValueError("the tokenizer needs a pad token and the end token as its highest id "
                         "(the text model pools at the argmax id)")
    manifest = {
        "id": pack_id or _default_id(family, checkpoint, random),
        "name": f"{'OWLv2' if family == 'owlv2' else 'OWL-ViT'} "
                f"{'random ' + random if random else Path(str(checkpoint)).name}"
                f"{' int8' if quantize else ''}",
        "version": version, "task": "detector", "family": family, "license": LICENSE,
        "source": {"checkpoint": None if random else str(checkpoint), "random": random,
                   "seed": seed if random else None, "torch": torch.__version__,
                   "transformers": transformers.__version__, "opset": OPSET},
        "preprocessing": _preprocessing(family, proc, vc.image_size),
        "io": _io(family, grid * grid, dim, vc.image_size),
        "config": {"grid": [grid, grid], "num_patches": grid * grid, "embed_dim": dim,
                   "quantized": bool(quantize), "text_embeds": "l2-normalized",
                   "class_embeds": "dense0 / (norm + 1e-6)", "logit_scale": "elu + 1 applied",
                   "box_format": "cxcywh relative to the model input (owlv2: the padded square)",
                   "tokenizer": {"file": "tokenizer.json", "max_length": TOKEN_LENGTH,
                                 "pad_id": int(tok.pad_token_id), "bos_id": int(tok.bos_token_id),
                                 "eos_id": int(tok.eos_token_id)}},
        "extra_files": ["tokenizer.json"],
    }
    return write_pack(out, manifest)
