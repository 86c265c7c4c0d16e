"""Export a SAM 2 / SAM 2.1 (transformers ``Sam2Model``) checkpoint to a segmenter pack.

Two graphs, split like segment-anything's ONNX export (encode once, prompt many times):

``image_encoder.onnx``  pixel_values f32 (1, 3, 1024, 1024)
                        -> image_embeddings f32 (1, C, 64, 64)   (no-memory embedding added, as
                                                                  ``Sam2Model`` does for images)
                           high_res_feats_0 f32 (1, C/8, 256, 256)  (``conv_s0`` applied)
                           high_res_feats_1 f32 (1, C/4, 128, 128)  (``conv_s1`` applied)
``prompt_decoder.onnx`` the three encoder outputs,
                        point_coords f32 (1, N, 2) in model-input pixels (1024 x 1024 squash),
                        point_labels f32 (1, N): 1 pos, 0 neg, 2/3 box corners, -1 padding,
                        mask_input f32 (1, 1, 256, 256), has_mask_input f32 (1,)
                        -> iou_scores f32 (1, 4), low_res_masks f32 (1, 4, 256, 256),
                           object_score_logits f32 (1, 1)

The decoder returns all four mask tokens before SAM 2's selection: index 0 is the single-mask
token, 1..3 the multimask tokens. The runtime applies the selection (multimask arg-max, or the
single mask with SAM 2's "dynamic multimask via stability" fallback) in numpy, so one graph
serves both modes. Object-score logits are exported for information; transformers' image path
(like SAM2ImagePredictor) does not use them to blank masks, and neither does the runtime.

Classic exporter (``dynamo=False``) with eager attention; nothing needed rewriting except that
the decoder is re-assembled (``DecoderGraph``) to take box corners as labelled points and to
return the unselected tokens. ``random="tiny"`` is a small config for tests, ``"full"`` SAM 2.1
hiera-tiny at real size (same FLOPs); both get weights shaped so masks are real blobs around the
clicks (``_shape_blob_weights``): with plain random weights the full-size masks are speckle with
thousands of parts, and a benchmark would time the polygon tracer on noise.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from backend import atomic
from backend.models.pack import Pack, write_pack
from build_scripts.exporters.quantize import quantize_graphs

ENCODER_FILE = "image_encoder.onnx"
DECODER_FILE = "prompt_decoder.onnx"
OPSET = 17
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
ENCODER_OUTPUTS = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")
# What Sam2ImageProcessor does (its defaults; the class itself needs torchvision).
PREPROCESSOR_DEFAULTS: dict[str, Any] = {"image_processor_type": "Sam2ImageProcessor", "do_resize": True,
                         "size": {"height": 1024, "width": 1024}, "resample": 2,
                         "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                         "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD,
                         "do_convert_rgb": True, "mask_size": {"height": 256, "width": 256}}

# Hiera with 4 stages of 1-2 blocks, 8..64 wide; same 1024 input, feature sizes and token layout
# as the real model. Decoder attention heads of 16 dims fit the blob shaping below.
TINY_CONFIG: dict[str, Any] = {
    "vision_config": {
        "backbone_config": {"model_type": "sam2_hiera_det_model", "hidden_size": 8,
                            "num_attention_heads": 1,
                            "embed_dim_per_stage": [8, 16, 32, 64],
                            "num_attention_heads_per_stage": [1, 1, 2, 2],
                            "blocks_per_stage": [1, 1, 2, 1],
                            "window_size_per_stage": [8, 4, 14, 7], "global_attention_blocks": [3]},
        "backbone_channel_list": [64, 32, 16, 8], "fpn_hidden_size": 64},
    "prompt_encoder_config": {"hidden_size": 64, "mask_input_channels": 8},
    "mask_decoder_config": {"hidden_size": 64, "mlp_dim": 64, "num_attention_heads": 2,
                            "iou_head_hidden_dim": 32},
}


# --- random checkpoints ----------------------------------------------------------------------

def build_random_model(size: str, seed: int = 0) -> Any:
    """A ``Sam2Model`` with blob-shaped random weights: ``tiny`` (tests) or ``full`` (SAM 2.1
    hiera-tiny; shaping and calibrating it costs one encoder pass, ~15 s on one core)."""
    from transformers import Sam2Config, Sam2Model

    if size == "tiny":
        config = Sam2Config(**TINY_CONFIG)
    elif size == "full":
        config = Sam2Config()  # the defaults are sam2.1-hiera-tiny
    else:
        raise ValueError(f"random must be 'tiny' or 'full', got {size!r}")
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = Sam2Model(config).eval()
    _shape_blob_weights(model, seed)
    return model


def save_random_checkpoint(size: str, seed: int, folder: Path) -> Path:
    """``save_pretrained`` folder (weights + config + the image processor's JSON)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_random_model(size, seed).save_pretrained(folder)
    atomic.write_json(folder / "preprocessor_config.json", PREPROCESSOR_DEFAULTS)
    return folder


@torch.no_grad()
def _shape_blob_weights(model: Any, seed: int) -> None:
    """Make a random SAM 2 produce blobs around the clicks instead of near-zero noise.

    With transformers' init the masks are ~1e-5 noise, so parity on them proves nothing. The
    only click -> pixel route is the two-way blocks' image-to-token attention: with q/k
    projecting onto Fourier positional features, pixel p attends to click c with logit
    ~ sum_k cos(2 pi w_k . (p - c)), for frequencies on a ring of 8 directions a J0-shaped bump
    (one ring per head: two widths). Those feature dims are kept free of image content and of
    token identity; a negative click carries the opposite embedding of a positive one, box
    corners nearly the same; token updates are quiet, so a click writes the same into the image
    stream whatever else is in the prompt. Everything else keeps rescaled random weights, so
    every weight still matters for parity. The readout is then calibrated on a probe image
    (``_calibrate_readout``): nested blobs of different sizes per mask token, a mask prompt
    that visibly refines, IoU scores whose arg-max depends on the prompt.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    for mod in model.modules():  # unit-gain init: transformers' std 0.02 collapses everything
        if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            mod.reset_parameters()
    dec, prompt = model.mask_decoder, model.prompt_encoder
    hidden, nf = dec.hidden_size, dec.hidden_size // 2
    layers = dec.transformer.layers
    att0 = layers[0].cross_attn_image_to_token
    heads, per_head = att0.num_attention_heads, att0.head_dim // 2
    # Ring frequencies (cycles per unit of [-1, 1]); the rest 0 = constant, position-free dims.
    freqs = torch.zeros(2, nf)
    kernel: list[list[int]] = []
    for h, radius in zip(range(heads), (0.6, 1.0, 0.8, 1.2), strict=False):
        ks = list(range(h * per_head, (h + 1) * per_head))
        for j, k in enumerate(ks):
            angle = math.pi * j / per_head
            freqs[:, k] = torch.tensor([math.cos(angle), math.sin(angle)]) * radius
        kernel.append(ks)
    model.shared_image_embedding.positional_embedding.copy_(freqs)
    prompt.shared_embedding.positional_embedding.copy_(freqs)  # tied, as in the real model
    dims = [k for ks in kernel for k in ks]
    dims += [nf + k for k in dims]  # sin_k and cos_k
    proj = torch.zeros(att0.q_proj.out_features, hidden)
    for h, ks in enumerate(kernel):
        for j, k in enumerate(ks):
            proj[h * att0.head_dim + 2 * j, k] = 1.0
            proj[h * att0.head_dim + 2 * j + 1, nf + k] = 1.0
    e_pos = torch.randn(hidden, generator=gen) * 4.0
    prompt.point_embed.weight[1] = e_pos
    prompt.point_embed.weight[0] = -e_pos  # a negative click pushes the other way
    for i in (2, 3):
        prompt.point_embed.weight[i] = e_pos + 0.3 * torch.randn(hidden, generator=gen)
    # Content stays out of the kernel dims: image stream, dense prompt, token embeddings.
    necks = list(model.vision_encoder.neck.convs[:2])  # the two convs that make the 64x64 level
    for conv in necks:
        conv.weight.mul_(0.1)  # image content: a perturbation of the prompt-driven keys
        conv.bias.mul_(0.1)
        conv.weight[dims] = 0.0
        conv.bias[dims] = 0.0
    model.no_memory_embedding.normal_(0.0, 0.3, generator=gen)
    model.no_memory_embedding[..., dims] = 0.0
    for emb in (dec.obj_score_token, dec.iou_token, dec.mask_tokens, prompt.point_embed,
                prompt.not_a_point_embed, prompt.no_mask_embed):
        emb.weight[:, dims] = 0.0
    conv3 = prompt.mask_embed.conv3
    conv3.weight.mul_(4.0)
    conv3.bias.copy_(prompt.no_mask_embed.weight[0])  # a mask prompt perturbs, not replaces
    conv3.weight[dims] = 0.0
    for layer in layers:
        # Image content stays a small perturbation of the next block's keys; the last block's
        # keys must still outweigh the high-resolution skips added in the upscaling.
        for norm, gain in ((layer.layer_norm3, 0.1),
                           (layer.layer_norm4, 1.0 if layer is layers[-1] else 0.3)):
            norm.weight.mul_(gain)
            norm.weight[dims] = 0.0
            norm.bias[dims] = 0.0
        att = layer.cross_attn_image_to_token
        for lin in (att.q_proj, att.k_proj):
            lin.weight.copy_(1.5 * proj)
            lin.bias.zero_()
        # Token states carry the click position nowhere but into that attention.
        readers = [layer.mlp.proj_in, layer.cross_attn_token_to_image.q_proj]
        if layer is not layers[0]:
            readers += [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj]
        for lin in readers:
            lin.weight[:, dims] = 0.0
        # Quiet token updates: every token stays close to its own embedding, so what a click
        # writes into the image stream does not depend on how many other prompts there are.
        quiet = [layer.mlp.proj_out, layer.cross_attn_token_to_image.o_proj]
        if layer is not layers[0]:
            quiet.append(layer.self_attn.o_proj)
        for lin in quiet:
            lin.weight.mul_(0.1)
    # The last token-to-image attention only feeds the heads: loud, so IoU scores follow the blob.
    dec.transformer.final_attn_token_to_image.o_proj.weight.mul_(3.0)
    for lin in [dec.transformer.final_attn_token_to_image.q_proj, dec.pred_obj_score_head.proj_in,
                *(mlp.proj_in for mlp in dec.output_hypernetworks_mlps)]:
        lin.weight[:, dims] = 0.0
    # The first self-attention has no residual: near-identity keeps the tokens apart.
    sa, eye = layers[0].self_attn, torch.eye(hidden)
    for lin, gain in ((sa.q_proj, 0.8), (sa.k_proj, 0.8), (sa.v_proj, 1.0), (sa.o_proj, 1.0)):
        lin.weight.mul_(0.1).add_(gain * eye)
    # Identical 2x2 kernels: nearest-neighbour upscaling, no checkerboard speckle; quiet skips.
    for conv in (dec.upscale_conv1, dec.upscale_conv2):
        conv.weight.copy_(conv.weight.mean((2, 3), keepdim=True).expand_as(conv.weight))
    dec.conv_s0.weight.mul_(0.005)
    dec.conv_s1.weight.mul_(0.005)
    # Channel 0 of the upscaled embedding is a constant: each mask token's logit offset.
    dec.upscale_conv2.weight[:, 0] = 0.0
    dec.upscale_conv2.bias[0] = 1.0
    dec.conv_s0.weight[0] = 0.0
    dec.conv_s0.bias[0] = 0.0
    for mlp in dec.output_hypernetworks_mlps:
        mlp.proj_out.weight.mul_(0.05)
        mlp.proj_out.weight[0] = 0.0
    _calibrate_readout(model)


def _probe_embeddings(model: Any) -> list[torch.Tensor]:
    """Image embeddings of a fixed synthetic image (gradients, texture, a disc)."""
    h, w = 192, 256
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w * 200, yy / h * 200, 128 + 60 * np.sin(xx / 11.0)], -1)
    img[(xx - 80) ** 2 + (yy - 70) ** 2 < 40 ** 2] = (220, 60, 40)
    u8 = torch.from_numpy(img.astype(np.uint8)).permute(2, 0, 1)[None].contiguous()
    pixels = nn.functional.interpolate(u8, (1024, 1024), mode="bilinear", antialias=True)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return model.get_image_embeddings((pixels.float() / 255 - mean) / std)


_PROBE_CLICKS = ((0.5, 0.5), (0.25, 0.3), (0.75, 0.65), (0.3, 0.8), (0.8, 0.2))
# Prompts the mask areas are calibrated on (model-input fractions): clicks, pairs, boxes.
_PROBE_PROMPTS: tuple[dict[str, Any], ...] = (
    *({"points": [(x, y)], "labels": [1]} for x, y in _PROBE_CLICKS),
    {"points": [(0.3, 0.35), (0.45, 0.5)], "labels": [1, 1]},
    {"points": [(0.6, 0.4), (0.7, 0.5)], "labels": [1, 0]},
    {"box": (0.2, 0.2, 0.55, 0.6)},
    {"points": [(0.65, 0.7)], "labels": [1], "box": (0.5, 0.55, 0.85, 0.9)},
)


def _probe(model: Any, emb: list[torch.Tensor], prompt: dict[str, Any],
           multimask: bool = False, mask: torch.Tensor | None = None) -> Any:
    kw: dict[str, Any] = {"image_embeddings": emb, "multimask_output": multimask}
    if mask is not None:
        kw["input_masks"] = mask.reshape(1, 1, *mask.shape[-2:])
    if "points" in prompt:
        kw["input_points"] = torch.tensor([[[[x * 1024, y * 1024] for x, y in prompt["points"]]]])
        kw["input_labels"] = torch.tensor([[prompt["labels"]]])
    if "box" in prompt:
        kw["input_boxes"] = torch.tensor([[[v * 1024 for v in prompt["box"]]]])
    return model(**kw)


def _readout(model: Any) -> tuple[dict[str, Any], list[Any]]:
    """Hooks that record the last two-way attention and the upscaled embedding."""
    dec = model.mask_decoder
    last = dec.transformer.layers[-1].cross_attn_image_to_token
    seen: dict[str, Any] = {}
    hooks = [last.register_forward_hook(lambda m, i, o: seen.__setitem__("attn", o)),
             # the last call of the shared activation is the upscaled embedding (1, c, 4E, 4E)
             dec.activation.register_forward_hook(lambda m, i, o: seen.__setitem__("up", o))]
    return seen, hooks


@torch.no_grad()
def _calibrate_readout(model: Any, levels: tuple[float, ...] = (0.6, 0.8, 0.65, 0.5)) -> None:
    """Read the masks out along the direction the click's attention moves the upscaled
    embedding: mask token k keeps what rises above ``levels[k]`` of the way from the typical
    background to the typical peak over the probe prompts (logits span ~100 units from
    background to peak: steep edges, stable masks). Then tune the mask prompt and spread the IoU head."""
    dec = model.mask_decoder
    last = dec.transformer.layers[-1].cross_attn_image_to_token
    click_token = 2 + dec.num_mask_tokens  # after the object-score, IoU and mask tokens
    seen, hooks = _readout(model)
    try:
        emb = _probe_embeddings(model)
        _probe(model, emb, _PROBE_PROMPTS[0])  # make the attention output dominate the keys
        last.o_proj.weight.div_(seen["attn"][0][0, 0].std(0).mean())
        side = emb[-1].shape[-1]
        att_maps, ups = [], []
        for prompt in _PROBE_PROMPTS:
            _probe(model, emb, prompt)
            ups.append(seen["up"][0].reshape(seen["up"].shape[1], -1).T)
            if len(prompt.get("points", ())) == 1 and "box" not in prompt:
                a = seen["attn"][1][0].mean(0)[:, click_token].reshape(side, side)
                att_maps.append(a.repeat_interleave(4, 0).repeat_interleave(4, 1).reshape(-1))
        n = len(att_maps)
        a_all, u_clicks = torch.cat(att_maps), torch.cat(ups[:n])
        design = torch.stack([torch.ones_like(a_all), a_all], 1)
        d = torch.linalg.lstsq(design, u_clicks).solution[1]  # U(p) ~ c0 + a(p) * d
        d[0] = 0.0  # channel 0 is the constant
        unit = d / (d @ d)
        # Background and peak of the read-out signal per probe prompt (typical: medians).
        along = [(u @ unit)[::3] for u in ups]
        far = float(torch.stack([a.median() for a in along]).median())
        peak = float(torch.stack([torch.quantile(a, 0.999) for a in along]).median())
        gain, u0 = 100.0 / (peak - far), float(nn.functional.gelu(torch.tensor(1.0)))
        for mlp, level in zip(dec.output_hypernetworks_mlps, levels, strict=True):
            mlp.proj_out.bias.copy_(gain * unit)
            mlp.proj_out.bias[0] = -gain * (far + level * (peak - far)) / u0
        _tune_mask_prompt(model, emb, seen, unit, 0.3 * (peak - far))
    finally:
        for hook in hooks:
            hook.remove()
    _spread_iou_head(model, emb, _PROBE_PROMPTS[:n])


def _tune_mask_prompt(model: Any, emb: list[torch.Tensor], seen: dict[str, Any],
                      unit: torch.Tensor, target: float) -> None:
    """Scale the mask prompt so a previous mask raises the read-out inside it by ``target``
    relative to outside: refinement then visibly moves the mask (and is worth testing)."""
    conv3 = model.prompt_encoder.mask_embed.conv3
    no_mask = model.prompt_encoder.no_mask_embed.weight[0]
    prompt = _PROBE_PROMPTS[1]
    previous = _probe(model, emb, prompt, True).pred_masks[0, 0, -1]
    inside = (previous > 0).flatten()
    grab = conv3.register_forward_hook(lambda m, i, o: seen.__setitem__("feat", i[0]))
    try:
        _probe(model, emb, prompt, mask=previous)
    finally:
        grab.remove()
    small = nn.functional.interpolate(previous[None, None], seen["feat"].shape[-2:])[0, 0]
    outside = seen["feat"][0][:, small <= 0].median(dim=1).values  # (c,) features off the mask

    def effect() -> float:
        # Off the previous mask the dense prompt equals the no-mask embedding.
        conv3.bias.copy_(no_mask - conv3.weight[:, :, 0, 0] @ outside)
        _probe(model, emb, prompt)
        plain = seen["up"][0].reshape(seen["up"].shape[1], -1).T @ unit
        _probe(model, emb, prompt, mask=previous)
        moved = seen["up"][0].reshape(seen["up"].shape[1], -1).T @ unit - plain
        return float(moved[inside].mean() - moved[~inside].mean())

    e = effect()
    if e < 0:
        conv3.weight.neg_()
        e = -e
    for _ in range(3):
        conv3.weight.mul_(min(4.0, max(0.25, target / max(e, 1e-6))))
        e = effect()


def _spread_iou_head(model: Any, emb: list[torch.Tensor], prompts: Any) -> None:
    """Spread the IoU head's pre-sigmoid scores over the probe clicks, with offsets that keep
    every token in play, so the multimask winner depends on the click."""
    dec = model.mask_decoder
    stable = dec.dynamic_multimask_via_stability
    dec.dynamic_multimask_via_stability = False  # multimask=False then returns plain token 0
    try:
        scores = [torch.cat([_probe(model, emb, p).iou_scores[0, 0],
                             _probe(model, emb, p, True).iou_scores[0, 0]]) for p in prompts]
    finally:
        dec.dynamic_multimask_via_stability = stable
    z = torch.logit(torch.stack(scores).double()).float()  # (prompts, 4)
    g = min(0.4 / float((z - z.mean(0)).std()), 50.0)
    head = dec.iou_prediction_head.proj_out
    head.weight.mul_(g)
    head.bias.copy_(g * head.bias - g * z.mean(0) + torch.tensor([0.8, -0.15, 0.0, 0.15]))


# --- graphs ----------------------------------------------------------------------------------

class EncoderGraph(nn.Module):
    """pixel_values -> (image_embeddings, high_res_feats_0, high_res_feats_1), exactly
    ``Sam2Model.get_image_embeddings`` (levels reordered: the low-res embedding first)."""

    def __init__(self, model: Any, size: int) -> None:
        super().__init__()
        self.model = model
        backbone = model.vision_encoder.backbone
        # Hiera's windowed positional embedding (bicubic resize + tile of two parameters) is a
        # constant for the fixed input size, but traced it becomes Shape/If subgraphs that
        # onnxruntime warns about on every load. Computed here, it is traced as a constant.
        grid = [size // s for s in backbone.config.patch_stride]
        with torch.no_grad():
            self.register_buffer("pos_embed", backbone._get_pos_embed(grid).clone())

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        backbone = self.model.vision_encoder.backbone
        backbone._get_pos_embed = lambda hw: self.pos_embed
        try:
            feat_s0, feat_s1, embeddings = self.model.get_image_embeddings(pixel_values)
        finally:
            del backbone._get_pos_embed
        return embeddings, feat_s0, feat_s1


class DecoderGraph(nn.Module):
    """``Sam2PromptEncoder`` + ``Sam2MaskDecoder`` with box corners as labelled points, returning
    all four mask tokens (selection happens in the runtime).

    Token order matches transformers: points..., then box corners (labels 2, 3), then one
    padding point (label -1) that the caller appends; ``Sam2PromptEncoder._embed_boxes`` adds
    ``point_embed[2|3]`` to the corners and puts ``not_a_point_embed`` after them, which is what
    the label arithmetic below gives.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.input_size = float(model.prompt_encoder.input_image_size)

    def forward(self, image_embeddings: torch.Tensor, high_res_feats_0: torch.Tensor,
                high_res_feats_1: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor, mask_input: torch.Tensor,
                has_mask_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        prompt, dec = self.model.prompt_encoder, self.model.mask_decoder
        coords = (point_coords + 0.5)[:, None]  # (1, 1, N, 2), shift to the pixel centre
        labels = point_labels[:, None]  # (1, 1, N)
        sparse = prompt.shared_embedding(coords, (self.input_size, self.input_size))
        sparse = torch.where(labels[..., None] == -1, prompt.not_a_point_embed.weight, sparse)
        for i in range(prompt.point_embed.num_embeddings):
            sparse = torch.where((labels == i)[..., None], sparse + prompt.point_embed.weight[i], sparse)
        has = has_mask_input.reshape(1, 1, 1, 1)
        dense = has * prompt.mask_embed(mask_input) \
            + (1.0 - has) * prompt.no_mask_embed.weight.reshape(1, -1, 1, 1)

        batch, channels, height, width = image_embeddings.shape
        tokens = torch.cat([dec.obj_score_token.weight, dec.iou_token.weight,
                            dec.mask_tokens.weight], dim=0)[None, None]
        tokens = torch.cat([tokens, sparse], dim=2)
        queries, keys = dec.transformer(
            point_embeddings=tokens, image_embeddings=image_embeddings + dense,
            image_positional_embeddings=self.model.get_image_wide_positional_embeddings(),
            attention_similarity=None)
        mask_tokens_out = queries[:, :, 2:2 + dec.num_mask_tokens, :]
        keys = keys.transpose(2, 3).reshape(batch, channels, height, width)
        up = dec.upscale_conv1(keys) + high_res_feats_1
        up = dec.activation(dec.upscale_layer_norm(up))
        up = dec.activation(dec.upscale_conv2(up) + high_res_feats_0)
        hyper = torch.stack([mlp(mask_tokens_out[:, :, i, :])
                             for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=2)
        up_c, up_h, up_w = up.shape[1:]
        masks = (hyper @ up.reshape(batch, 1, up_c, up_h * up_w)).reshape(batch, -1, up_h, up_w)
        iou = dec.iou_prediction_head(queries[:, :, 1, :]).reshape(batch, -1)
        obj = dec.pred_obj_score_head(queries[:, :, 0, :]).reshape(batch, 1)
        return iou, masks, obj


def _io(model: Any) -> dict[str, Any]:
    cfg = model.config
    size = cfg.prompt_encoder_config.image_size
    emb = size // cfg.prompt_encoder_config.patch_size
    c = cfg.mask_decoder_config.hidden_size
    tokens = cfg.mask_decoder_config.num_multimask_outputs + 1
    f32 = "float32"
    feats = {"image_embeddings": {"dtype": f32, "shape": [1, c, emb, emb]},
             "high_res_feats_0": {"dtype": f32, "shape": [1, c // 8, emb * 4, emb * 4]},
             "high_res_feats_1": {"dtype": f32, "shape": [1, c // 4, emb * 2, emb * 2]}}
    return {
        "encoder": {"file": ENCODER_FILE,
                    "inputs": {"pixel_values": {"dtype": f32, "shape": [1, 3, size, size]}},
                    "outputs": feats},
        "decoder": {"file": DECODER_FILE,
                    "inputs": dict(feats, **{
                        "point_coords": {"dtype": f32, "shape": [1, "num_points", 2]},
                        "point_labels": {"dtype": f32, "shape": [1, "num_points"]},
                        "mask_input": {"dtype": f32, "shape": [1, 1, emb * 4, emb * 4]},
                        "has_mask_input": {"dtype": f32, "shape": [1]}}),
                    "outputs": {"iou_scores": {"dtype": f32, "shape": [1, tokens]},
                                "low_res_masks": {"dtype": f32, "shape": [1, tokens, emb * 4, emb * 4]},
                                "object_score_logits": {"dtype": f32, "shape": [1, 1]}}},
    }


def _export_graphs(model: Any, out: Path) -> dict[str, Any]:
    io = _io(model)
    size = io["encoder"]["inputs"]["pixel_values"]["shape"][-1]
    feats = [torch.zeros(spec["shape"]) for spec in io["encoder"]["outputs"].values()]
    mask = io["decoder"]["inputs"]["mask_input"]["shape"]
    dec_inputs = (*feats, torch.tensor([[[100.0, 200.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
                  torch.zeros(mask), torch.zeros(1))
    with torch.no_grad(), warnings.catch_warnings():
        # Tracer warnings about Python ints in the HF code (static shapes here) and the
        # deprecation notice of the classic exporter, which is chosen on purpose.
        warnings.simplefilter("ignore")
        torch.onnx.export(EncoderGraph(model, size).eval(), (torch.zeros(1, 3, size, size),),
                          str(out / ENCODER_FILE), input_names=["pixel_values"],
                          output_names=list(ENCODER_OUTPUTS), opset_version=OPSET, dynamo=False)
        torch.onnx.export(DecoderGraph(model).eval(), dec_inputs, str(out / DECODER_FILE),
                          input_names=list(io["decoder"]["inputs"]),
                          output_names=list(io["decoder"]["outputs"]),
                          dynamic_axes={"point_coords": {1: "num_points"},
                                        "point_labels": {1: "num_points"}},
                          opset_version=OPSET, dynamo=False)
    return io


def _preprocessing(src: Path | None, size: int) -> dict[str, Any]:
    """Sam2ImageProcessor's settings from the checkpoint's JSON (defaults where absent)."""
    cfg = dict(PREPROCESSOR_DEFAULTS)
    if src is not None and (src / "preprocessor_config.json").is_file():
        cfg.update(json.loads((src / "preprocessor_config.json").read_text(encoding="utf-8")))
    got = (cfg["size"].get("height"), cfg["size"].get("width"))
    if got != (size, size):
        raise ValueError(f"image processor size {got} does not match the model's {size}x{size}")
    if int(cfg["resample"]) != 2 or not (cfg["do_resize"] and cfg["do_rescale"] and cfg["do_normalize"]):
        raise ValueError("only Sam2ImageProcessor's bilinear resize + rescale + normalize is supported")
    return {"resize": "squash", "size": [size, size], "resample": "bilinear",
            "rescale": float(cfg["rescale_factor"]), "mean": [float(v) for v in cfg["image_mean"]],
            "std": [float(v) for v in cfg["image_std"]], "layout": "NCHW", "channels": "RGB"}


def _load_checkpoint(checkpoint: str) -> Any:
    from transformers import Sam2Model

    model = Sam2Model.from_pretrained(checkpoint, attn_implementation="eager").eval()
    if model.config.model_type != "sam2":
        raise ValueError(f"checkpoint {checkpoint} is a {model.config.model_type!r} model, not sam2")
    return model


def export(*, family: str, checkpoint: str | None, random: str | None, out: Path, quantize: bool,
           seed: int, pack_id: str | None, version: str) -> Pack:
    import transformers

    if family != "sam2":
        raise ValueError(f"the sam2 exporter exports family 'sam2', not {family!r}")
    if (checkpoint is None) == (random is None):
        raise ValueError("give exactly one of checkpoint or random")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / "manifest.json").is_file():  # never wipe a folder that is not a pack
            raise ValueError(f"{out} exists and is not a model pack; choose an empty folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(checkpoint) if checkpoint else save_random_checkpoint(str(random), seed,
                                                                         Path(tmp) / "ckpt")
        model = _load_checkpoint(str(src))
        preprocessing = _preprocessing(src if src.is_dir() else None,
                                       model.config.prompt_encoder_config.image_size)
    graphs = _export_graphs(model, out)
    if quantize:
        quantize_graphs(out, (ENCODER_FILE, DECODER_FILE))
    cfg = model.config
    dc = cfg.mask_decoder_config
    emb = cfg.prompt_encoder_config.image_size // cfg.prompt_encoder_config.patch_size
    label = Path(str(checkpoint)).name if checkpoint else f"{random}, random weights"
    slug = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in label.lower()).strip("-._")
    default_id = f"sam2-{random}-random" if random else (slug[:90] or "sam2")
    manifest = {
        "id": pack_id or default_id + ("-int8" if quantize else ""),
        "name": f"SAM 2 ({label}){' int8' if quantize else ''}",
        "version": version, "task": "segmenter", "family": "sam2", "license": "apache-2.0",
        "source": {"checkpoint": checkpoint, "random": random, "seed": seed if random else None,
                   "quantized": bool(quantize), "transformers": transformers.__version__,
                   "torch": torch.__version__.split("+")[0], "opset": OPSET,
                   "backbone": {k: getattr(cfg.vision_config.backbone_config, k) for k in
                                ("embed_dim_per_stage", "blocks_per_stage", "global_attention_blocks")}},
        "preprocessing": preprocessing,
        "io": {"graphs": graphs},
        "config": {"embedding_size": emb, "mask_size": emb * 4,
                   "num_mask_tokens": dc.num_multimask_outputs + 1, "single_mask_index": 0,
                   "multimask_indices": list(range(1, dc.num_multimask_outputs + 1)),
                   "mask_threshold": 0.0,
                   "dynamic_multimask_via_stability": bool(dc.dynamic_multimask_via_stability),
                   "stability_delta": float(dc.dynamic_multimask_stability_delta),
                   "stability_thresh": float(dc.dynamic_multimask_stability_thresh),
                   "encoder_outputs": list(ENCODER_OUTPUTS),
                   "labels": {"positive": 1, "negative": 0, "box": [2, 3], "padding": -1}},
    }
    return write_pack(out, manifest)
