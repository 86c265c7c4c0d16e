"""Export a SAM (segment-anything) checkpoint to a Fieldmark segmenter pack (build-time only).

Two graphs, split like segment-anything's own ONNX export (ADR 0004):

``image_encoder.onnx``  pixel_values f32 (1, 3, 1024, 1024) -> image_embeddings f32 (1, C, 64, 64)
``prompt_decoder.onnx`` image_embeddings, point_coords f32 (1, N, 2) in resized-input pixels,
                        point_labels f32 (1, N) (1 pos, 0 neg, 2/3 box corners, -1 padding),
                        mask_input f32 (1, 1, 256, 256), has_mask_input f32 (1,)
                        -> iou_scores f32 (1, 4), low_res_masks f32 (1, 4, 256, 256)

The decoder returns all four mask tokens (index 0 = SamModel(multimask_output=False), 1..3 =
multimask_output=True); the runtime picks one, so one graph serves both modes.

``random="tiny"`` builds a small SamConfig for tests; ``"full"`` is SAM ViT-B at real size and
``"slimsam-50"`` / ``"slimsam-77"`` are the pruned ViT-B widths of SlimSAM (hidden 384 / 168,
MLP 1536 / 696, from nielsr/slimsam-*-uniform config.json), for benchmarks. All random weights
are shaped so that masks are real blobs around the click (see ``_shape_blob_weights``). ``checkpoint`` takes any ``SamModel`` folder (SAM ViT-B/L/H, SlimSAM, MedSAM, ...).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.models.pack import Pack, write_pack
from build_scripts.exporters.quantize import quantize_graphs

ENCODER_FILE = "image_encoder.onnx"
DECODER_FILE = "prompt_decoder.onnx"
OPSET = 17
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

RANDOM_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "mlp_dim": 64, "window_size": 14, "global_attn_indexes": [1],
                          "output_channels": 64, "num_pos_feats": 32, "initializer_range": 0.02},
        "prompt_encoder_config": {"hidden_size": 64, "mask_input_channels": 8},
        "mask_decoder_config": {"hidden_size": 64, "mlp_dim": 128, "num_hidden_layers": 2,
                                "num_attention_heads": 2, "iou_head_hidden_dim": 64},
    },
    # SamVisionConfig defaults are ViT-B; initializer_range 0.02 instead of 1e-10 keeps
    # activations out of denormal floats, which would distort timings.
    "full": {"vision_config": {"initializer_range": 0.02}},
    "slimsam-50": {"vision_config": {"hidden_size": 384, "mlp_dim": 1536, "initializer_range": 0.02}},
    "slimsam-77": {"vision_config": {"hidden_size": 168, "mlp_dim": 696, "initializer_range": 0.02}},
}


def build_random_model(kind: str, seed: int = 0) -> Any:
    """A ``SamModel`` with deterministic random weights (``kind`` in RANDOM_CONFIGS)."""
    from transformers import SamConfig, SamModel

    if kind not in RANDOM_CONFIGS:
        raise ValueError(f"random must be one of {', '.join(RANDOM_CONFIGS)}, got {kind!r}")
    torch.manual_seed(seed)
    config = SamConfig(**RANDOM_CONFIGS[kind])
    config._attn_implementation = "eager"
    model = SamModel(config).eval()
    # Full-size variants too: noise masks would make the benchmarks time the polygon tracer
    # on thousands of specks instead of on the blobs a real checkpoint gives.
    _shape_blob_weights(model, torch.Generator().manual_seed(seed + 1))
    return model


@torch.no_grad()
def _shape_blob_weights(model: Any, gen: torch.Generator) -> None:
    """Make a random SAM produce blobs around the clicks instead of near-zero noise.

    With default init the decoder's masks are ~1e-4 noise, so parity on them proves nothing.
    The shortest click -> mask route in SAM is the last two-way block's image-to-token attention:
    a pixel p attends to a click token c with logit ~ pe(p) . pe(c) when q/k project onto the
    Fourier positional features, and pe(p) . pe(c) = sum_k cos(2 pi w_k . (p - c)) is a kernel
    (~ J0 for frequencies on a ring), i.e. a blob. Everything else keeps its random weights
    (scaled), so every weight still matters for parity. Then the hypernetwork readout is
    calibrated on a probe image so each mask token thresholds the blob at a different level
    (different areas), and the IoU head is biased so the three multimask scores differ.
    """
    dec, prompt = model.mask_decoder, model.prompt_encoder
    layers = dec.transformer.layers
    att0 = layers[0].cross_attn_image_to_token
    heads = att0.num_attention_heads
    per = att0.q_proj.out_features // heads
    nf = per // 2
    w_pe = model.shared_image_embedding.positional_embedding  # (2, npf), tied with the prompt's
    npf = w_pe.shape[1]
    w_pe.normal_(0.0, 1.0, generator=gen)
    radius = 0.45  # cycles per unit of [-1, 1]: first side lobe falls outside the image
    for h in range(heads):
        for k in range(nf):
            phi = math.pi * (k + 0.5 * h) / nf
            w_pe[0, h * nf + k] = radius * math.cos(phi)
            w_pe[1, h * nf + k] = radius * math.sin(phi)
    proj = torch.zeros_like(att0.q_proj.weight)  # picks sin_k / cos_k of each head's frequencies
    for h in range(heads):
        for k in range(nf):
            proj[h * per + k, h * nf + k] = 1.0
            proj[h * per + nf + k, npf + h * nf + k] = 1.0
    alpha = math.sqrt(0.6 / att0.scaling)  # attention logit = 0.6 * kernel
    for layer in layers:
        att = layer.cross_attn_image_to_token
        att.q_proj.weight.mul_(0.1).add_(alpha * proj)
        att.k_proj.weight.mul_(0.1).add_(alpha * proj)
        layer.layer_norm4.weight.mul_(0.03)  # image content stays a small perturbation
        layer.layer_norm3.weight.mul_(0.1)
    # Token embeddings of unit scale, kept off the positional dims the kernel reads, so tokens
    # keep their identity through the first (residual-free) self-attention and do not tilt it.
    used = proj.abs().sum(0) > 0
    c = dec.hidden_size
    dec.iou_token.weight.normal_(0.0, 1.0, generator=gen)
    dec.mask_tokens.weight.normal_(0.0, 1.0, generator=gen)
    prompt.not_a_point_embed.weight.normal_(0.0, 1.0, generator=gen)
    e_pos = torch.randn(c, generator=gen) * 4.0
    prompt.point_embed[1].weight[0] = e_pos
    prompt.point_embed[0].weight[0] = -e_pos  # a negative click pushes the other way
    # Box corners: top-left pushes like a negative click, bottom-right like a positive one, so
    # a box gives a blob that moves and grows with the box (not the union of two click blobs).
    for i, sign in ((2, -1.0), (3, 1.0)):
        prompt.point_embed[i].weight[0] = sign * e_pos + 0.3 * torch.randn(c, generator=gen)
    for w in [dec.iou_token.weight, dec.mask_tokens.weight, prompt.not_a_point_embed.weight,
              *(prompt.point_embed[i].weight for i in range(4))]:
        w[:, used] = 0.0
    # A mask prompt strong enough to move the logits (refinement is then testable), yet
    # damped by the layer norms above so it does not reintroduce speckle.
    for w in (prompt.mask_embed.conv3.weight, prompt.mask_embed.conv3.bias,
              prompt.no_mask_embed.weight):
        w.mul_(30.0)
    sa = layers[0].self_attn
    eye = torch.eye(c)
    for lin, gain in ((sa.q_proj, 0.8), (sa.k_proj, 0.8), (sa.v_proj, 1.0), (sa.out_proj, 1.0)):
        lin.weight.mul_(0.1).add_(gain * eye)
    # Identical 2x2 kernels: the upscaling is nearest-neighbour, no checkerboard speckle.
    for conv in (dec.upscale_conv1, dec.upscale_conv2):
        conv.weight.copy_(conv.weight[:, :, :1, :1].expand_as(conv.weight))
    dec.upscale_conv2.weight[:, 0] = 0.0  # channel 0 is constant: the logit offset
    dec.upscale_conv2.bias[0] = 1.0
    for mlp in dec.output_hypernetworks_mlps:
        mlp.proj_out.weight.mul_(0.05)
        mlp.proj_out.weight[0] = 0.0
        mlp.proj_out.bias.zero_()
    iou = dec.iou_prediction_head.proj_out
    iou.weight.mul_(5.0)
    iou.bias.copy_(torch.tensor([0.8, 0.75, 0.9, 0.7])[: iou.bias.shape[0]])
    _calibrate_readout(model, gen)


@torch.no_grad()
def _calibrate_readout(model: Any, gen: torch.Generator) -> None:
    """Set each hypernetwork's output bias so mask k = {attention-to-click > target_k}."""
    dec = model.mask_decoder
    last = dec.transformer.layers[-1].cross_attn_image_to_token
    seen: dict[str, torch.Tensor] = {}
    hooks = [last.register_forward_hook(lambda m, i, o: seen.__setitem__("attn", o[1])),
             last.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o[0])),
             dec.upscale_conv2.register_forward_hook(
                 lambda m, i, o: seen.__setitem__("up", nn.functional.gelu(o)))]
    try:
        emb = model.get_image_embeddings(torch.randn(1, 3, 1024, 1024, generator=gen))

        def click(x: float, y: float) -> None:
            model(image_embeddings=emb, input_points=torch.tensor([[[[x, y]]]]),
                  input_labels=torch.tensor([[[1]]]), multimask_output=False)

        click(480.0, 540.0)  # make the attention output dominate the image stream
        last.out_proj.weight.div_(seen["out"][0, 0].std(0).mean())
        side = emb.shape[-1]
        att_maps, ups = [], []
        for x, y in ((480, 540), (200, 300), (800, 700), (300, 850)):
            click(float(x), float(y))
            a = seen["attn"][0].mean(0)[:, 5].reshape(side, side)  # token 5: the click
            att_maps.append(a.repeat_interleave(4, 0).repeat_interleave(4, 1).reshape(-1))
            ups.append(seen["up"][0].reshape(seen["up"].shape[1], -1).T)
    finally:
        for h in hooks:
            h.remove()
    a_all, u_all = torch.cat(att_maps), torch.cat(ups)
    design = torch.stack([torch.ones_like(a_all), a_all], 1)
    coef = torch.linalg.lstsq(design, u_all).solution  # U(p) ~ coef0 + a(p) * coef1
    d = coef[1].clone()
    d[0] = 0.0
    base = float(coef[0] @ d / (d @ d))
    gain, c0 = 20.0, float(nn.functional.gelu(torch.tensor(1.0)))
    for mlp, target in zip(dec.output_hypernetworks_mlps, (0.6, 0.5, 0.68, 0.8), strict=True):
        mlp.proj_out.bias.copy_(gain * d / (d @ d))
        mlp.proj_out.bias[0] = -gain * (base + target) / c0


class EncoderGraph(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.vision = model.vision_encoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision(pixel_values).last_hidden_state


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder of ``SamModel`` with points and box corners as one list.

    Mirrors ``SamPromptEncoder`` (box corners = points labelled 2 / 3, which receive
    ``point_embed[2|3]`` like ``_embed_boxes``) and ``SamMaskDecoder`` but returns all four
    mask tokens, like segment-anything's ``SamOnnxModel``.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.input_size = float(model.prompt_encoder.input_image_size)

    def forward(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor, mask_input: torch.Tensor,
                has_mask_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, prompt, dec = self.model, self.model.prompt_encoder, self.model.mask_decoder
        coords = (point_coords + 0.5)[:, None]  # (1, 1, N, 2), shift to pixel centre
        labels = point_labels[:, None]  # (1, 1, N)
        emb = prompt.shared_embedding(coords, (self.input_size, self.input_size))
        emb = torch.where(labels[..., None] == -1, prompt.not_a_point_embed.weight, emb)
        for i in range(4):
            emb = torch.where((labels == i)[..., None], emb + prompt.point_embed[i].weight, emb)
        has = has_mask_input.reshape(1, 1, 1, 1)
        dense = has * prompt.mask_embed(mask_input) \
            + (1.0 - has) * prompt.no_mask_embed.weight.reshape(1, -1, 1, 1)
        image_pe = m.get_image_wide_positional_embeddings()

        batch, channels, height, width = image_embeddings.shape
        tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)[None, None]
        tokens = torch.cat([tokens, emb], dim=2)
        queries, keys = dec.transformer(point_embeddings=tokens,
                                        image_embeddings=image_embeddings + dense,
                                        image_positional_embeddings=image_pe,
                                        attention_similarity=None)
        iou_token_out = queries[:, :, 0, :]
        mask_tokens_out = queries[:, :, 1: 1 + dec.num_mask_tokens, :]
        keys = keys.transpose(2, 3).reshape(batch, channels, height, width)
        up = dec.activation(dec.upscale_layer_norm(dec.upscale_conv1(keys)))
        up = dec.activation(dec.upscale_conv2(up))
        hyper = torch.stack([mlp(mask_tokens_out[:, :, i, :])
                             for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=2)
        up_c, up_h, up_w = up.shape[1:]
        masks = (hyper @ up.reshape(batch, 1, up_c, up_h * up_w)).reshape(batch, -1, up_h, up_w)
        iou = dec.iou_prediction_head(iou_token_out).reshape(batch, -1)
        return iou, masks


def _export_graphs(model: Any, out: Path) -> dict[str, Any]:
    import warnings

    cfg = model.config
    image_size = cfg.vision_config.image_size
    emb_size = cfg.prompt_encoder_config.image_embedding_size
    channels = cfg.vision_config.output_channels
    mask_size = emb_size * 4
    num_tokens = cfg.mask_decoder_config.num_multimask_outputs + 1
    emb = torch.zeros(1, channels, emb_size, emb_size)
    dec_inputs = (emb, torch.tensor([[[100.0, 200.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
                  torch.zeros(1, 1, mask_size, mask_size), torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints in the HF code
        torch.onnx.export(EncoderGraph(model), (torch.zeros(1, 3, image_size, image_size),),
                          str(out / ENCODER_FILE), input_names=["pixel_values"],
                          output_names=["image_embeddings"], opset_version=OPSET, dynamo=False)
        torch.onnx.export(DecoderGraph(model), dec_inputs, str(out / DECODER_FILE),
                          input_names=["image_embeddings", "point_coords", "point_labels",
                                       "mask_input", "has_mask_input"],
                          output_names=["iou_scores", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "num_points"},
                                        "point_labels": {1: "num_points"}},
                          opset_version=OPSET, dynamo=False)
    f32 = "float32"
    return {
        "encoder": {"file": ENCODER_FILE,
                    "inputs": {"pixel_values": {"dtype": f32, "shape": [1, 3, image_size, image_size]}},
                    "outputs": {"image_embeddings": {"dtype": f32,
                                                     "shape": [1, channels, emb_size, emb_size]}}},
        "decoder": {"file": DECODER_FILE,
                    "inputs": {"image_embeddings": {"dtype": f32, "shape": [1, channels, emb_size, emb_size]},
                               "point_coords": {"dtype": f32, "shape": [1, "num_points", 2]},
                               "point_labels": {"dtype": f32, "shape": [1, "num_points"]},
                               "mask_input": {"dtype": f32, "shape": [1, 1, mask_size, mask_size]},
                               "has_mask_input": {"dtype": f32, "shape": [1]}},
                    "outputs": {"iou_scores": {"dtype": f32, "shape": [1, num_tokens]},
                                "low_res_masks": {"dtype": f32,
                                                  "shape": [1, num_tokens, mask_size, mask_size]}}},
    }


def _load_checkpoint(checkpoint: str) -> Any:
    from transformers import SamModel

    model = SamModel.from_pretrained(checkpoint, attn_implementation="eager")
    return model.eval()


def export(*, family: str, checkpoint: str | None, random: str | None, out: Path, quantize: bool,
           seed: int, pack_id: str | None, version: str) -> Pack:
    if family != "sam":
        raise ValueError(f"the sam exporter exports family 'sam', not {family!r}")
    if (checkpoint is None) == (random is None):
        raise ValueError("give exactly one of checkpoint or random")
    if random is not None:
        model = build_random_model(random, seed)
        default_id = f"sam-{random}-random"
        name = f"SAM ({random}, random weights)"
    else:
        model = _load_checkpoint(str(checkpoint))
        default_id = _slug(Path(str(checkpoint)).name or "sam")
        name = f"SAM ({Path(str(checkpoint)).name})"
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with torch.no_grad():
        graphs = _export_graphs(model, out)
    if quantize:
        quantize_graphs(out, (ENCODER_FILE, DECODER_FILE))
    import transformers

    cfg = model.config
    manifest = {
        "id": pack_id or default_id + ("-int8" if quantize else ""),
        "name": name + (" int8" if quantize else ""),
        "version": version,
        "task": "segmenter",
        "family": "sam",
        "license": "apache-2.0",
        "source": {"checkpoint": checkpoint, "random": random, "seed": seed if random else None,
                   "quantized": bool(quantize), "transformers": transformers.__version__,
                   "torch": torch.__version__.split("+")[0],
                   "vision": {"hidden_size": cfg.vision_config.hidden_size,
                              "num_hidden_layers": cfg.vision_config.num_hidden_layers,
                              "mlp_dim": cfg.vision_config.mlp_dim}},
        "preprocessing": _preprocessing(checkpoint, cfg.vision_config.image_size),
        "io": {"graphs": graphs},
        "config": {"embedding_size": cfg.prompt_encoder_config.image_embedding_size,
                   "mask_size": cfg.prompt_encoder_config.image_embedding_size * 4,
                   "num_mask_tokens": cfg.mask_decoder_config.num_multimask_outputs + 1,
                   "single_mask_index": 0,
                   "multimask_indices": list(range(1, cfg.mask_decoder_config.num_multimask_outputs + 1)),
                   "mask_threshold": 0.0,
                   "labels": {"positive": 1, "negative": 0, "box": [2, 3], "padding": -1}},
    }
    return write_pack(out, manifest)


def _preprocessing(checkpoint: str | None, image_size: int) -> dict[str, Any]:
    """SamImageProcessor's constants, from the checkpoint's preprocessor_config.json if any."""
    import json

    pre: dict[str, Any] = {}
    src = Path(str(checkpoint)) / "preprocessor_config.json" if checkpoint else None
    if src is not None and src.is_file():
        pre = json.loads(src.read_text(encoding="utf-8"))
    size = pre.get("size") or {}
    if size.get("longest_edge", image_size) != image_size:
        raise ValueError(f"{src}: longest_edge {size['longest_edge']} != model image_size {image_size}")
    return {"resize": "longest_side", "longest_side": image_size, "resample": "bilinear",
            "rescale": float(pre.get("rescale_factor", 1.0 / 255.0)),
            "mean": [float(v) for v in pre.get("image_mean", IMAGENET_MEAN)],
            "std": [float(v) for v in pre.get("image_std", IMAGENET_STD)],
            "pad": "bottom_right", "pad_value": 0.0, "layout": "NCHW", "channels": "RGB"}


def _slug(text: str) -> str:
    s = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text.lower()).strip("-._")
    return s[:100] or "sam"

