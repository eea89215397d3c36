#!/usr/bin/env python3
"""PyTorch golden for the whole U-Net (tests/unet_golden.rs).

Builds segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16), classes=1),
fills every float tensor of its state_dict with a closed-form formula that the Rust test reproduces (so no 98 MB
weight file is committed), runs a small batch and saves to tests/golden/unet.safetensors:
  input, mask, eval_logits (eval mode, the formula's running stats), train_logits (train mode), loss, dice,
  grads of selected parameters, running stats of selected BNs after the train-mode forward, all computed in
  float64; plus torch_f32_error.<param>: how far PyTorch's own float32 gradient is from the float64 one
  (max |diff| / max |ref|), which scales the Rust test's gradient tolerance.

Fill formula, tensor j (0-based index among the state_dict's floating-point tensors, in order), element i (flat):
  s = sin(0.731 * i + 1.37 * j + 0.1)
  conv / fc weight (ndim 4):  s * sqrt(3 / fan_in)          fan_in = in_ch * kh * kw
  *.bias of a conv (fc1, fc2, head):  0.1 * s
  BN weight: 1 + 0.1 * s;  BN bias: 0.1 * s;  running_mean: 0.1 * s;  running_var: 1.25 + 0.25 * s
  num_batches_tracked: 0
Input x[i] = 0.5 * sin(0.013 * i) + 0.3 * cos(0.0071 * i)  (already "normalised"), shape [2, 3, H, W]
Mask  t[n, 0, h, w] = 1 if ((h - H/2) / (H/3))^2 + ((w - W/2) / (W/3 + 4 n))^2 < 1 else 0

Usage, from the crate root: DIR/bin/python tools/golden_unet.py [--check-load FILE]
  --check-load FILE  additionally loads a fluke checkpoint with load_state_dict(strict=True) and prints OK.
Environment: a Python with torch, timm, segmentation_models_pytorch and safetensors; `bash
../shared/reference/setup.sh DIR` makes one, a venv in DIR with the versions pinned in
../shared/reference/requirements.txt.
"""
import math
import sys

import segmentation_models_pytorch as smp
import torch
from safetensors.torch import load_file, save_file

H, W, N = 64, 128, 2
GRAD_KEYS = [
    "encoder.model.layer0.conv1.weight",
    "encoder.model.layer0.bn1.weight",
    "encoder.model.layer1.0.se_module.fc1.weight",
    "encoder.model.layer1.0.se_module.fc1.bias",
    "encoder.model.layer3.2.se_module.fc2.weight",
    "encoder.model.layer2.0.downsample.1.weight",
    "encoder.model.layer4.2.bn2.bias",
    "decoder.blocks.3.conv1.0.weight",
    "decoder.blocks.4.conv2.0.weight",
    "decoder.blocks.2.conv1.1.weight",
    "segmentation_head.0.weight",
    "segmentation_head.0.bias",
]
BN_KEYS = ["encoder.model.layer0.bn1", "encoder.model.layer2.0.downsample.1", "encoder.model.layer4.2.bn2",
           "decoder.blocks.1.conv2.1", "decoder.blocks.4.conv2.1"]


def fill_value(name, shape, j):
    n = math.prod(shape) if shape else 1
    i = torch.arange(n, dtype=torch.float64)
    s = torch.sin(0.731 * i + 1.37 * j + 0.1)
    if len(shape) == 4:
        v = s * math.sqrt(3.0 / (shape[1] * shape[2] * shape[3]))
    elif name.endswith("running_mean"):
        v = 0.1 * s
    elif name.endswith("running_var"):
        v = 1.25 + 0.25 * s
    elif name.endswith(".weight"):  # BN gamma
        v = 1.0 + 0.1 * s
    else:  # BN beta, conv biases
        v = 0.1 * s
    return v.reshape(shape).to(torch.float32)


def build():
    torch.manual_seed(0)
    m = smp.Unet("tu-legacy_seresnet34", encoder_weights=None, decoder_channels=(256, 128, 64, 32, 16), classes=1)
    sd = m.state_dict()
    j = 0
    new = {}
    for k, v in sd.items():
        if v.dtype.is_floating_point:
            new[k] = fill_value(k, list(v.shape), j)
            j += 1
        else:
            new[k] = torch.zeros_like(v)
    m.load_state_dict(new, strict=True)
    return m


def main():
    if "--check-load" in sys.argv:
        path = sys.argv[sys.argv.index("--check-load") + 1]
        m = smp.Unet("tu-legacy_seresnet34", encoder_weights=None, decoder_channels=(256, 128, 64, 32, 16), classes=1)
        sd = load_file(path)
        m.load_state_dict(sd, strict=True)
        print(f"OK: {path} loads into smp Unet(tu-legacy_seresnet34) with strict=True ({len(sd)} tensors)")
        return
    torch.set_num_threads(2)
    # The reference runs in float64, so the test measures fluke's f32 error against exact arithmetic.
    m = build().double()
    i = torch.arange(N * 3 * H * W, dtype=torch.float64)
    x = (0.5 * torch.sin(0.013 * i) + 0.3 * torch.cos(0.0071 * i)).reshape(N, 3, H, W).to(torch.float32).to(torch.float64)  # f32-representable, as the Rust test reads it
    hh = torch.arange(H, dtype=torch.float64).reshape(1, H, 1)
    ww = torch.arange(W, dtype=torch.float64).reshape(1, 1, W)
    nn_ = torch.arange(N, dtype=torch.float64).reshape(N, 1, 1)
    t = ((((hh - H / 2) / (H / 3)) ** 2 + ((ww - W / 2) / (W / 3 + 4 * nn_)) ** 2) < 1).to(torch.float64)
    t = t.reshape(N, 1, H, W)

    m.eval()
    with torch.no_grad():
        eval_logits = m(x)
    m.train()
    z = m(x)
    p = torch.sigmoid(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
    dice = (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    loss = bce + 1 - dice
    loss.backward()
    params = dict(m.named_parameters())
    out = {"input": x, "mask": t, "eval_logits": eval_logits, "train_logits": z.detach(),
           "loss": loss.detach().reshape(1), "dice": dice.detach().reshape(1)}
    for k in GRAD_KEYS:
        out["grad." + k] = params[k].grad
    sd = m.state_dict()
    for b in BN_KEYS:
        out["after." + b + ".running_mean"] = sd[b + ".running_mean"]
        out["after." + b + ".running_var"] = sd[b + ".running_var"]
    out = {k: v.contiguous().to(torch.float32) for k, v in out.items()}
    # For scale: how far PyTorch's own float32 run is from this float64 reference (same metric as the Rust test).
    m32 = build()
    m32.train()
    z32 = m32(x.float())
    p32 = torch.sigmoid(z32)
    l32 = torch.nn.functional.binary_cross_entropy_with_logits(z32, t.float()) + 1 - (2 * (p32 * t.float()).sum() + 1) / (p32.sum() + t.float().sum() + 1)
    l32.backward()
    rel = lambda a, b: ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()
    print(f"torch float32 vs float64: train logits {rel(z32.detach(), out['train_logits']):.2e}")
    p32s = dict(m32.named_parameters())
    for k in GRAD_KEYS:
        e = rel(p32s[k].grad, out['grad.' + k])
        out['torch_f32_error.' + k] = torch.tensor([e], dtype=torch.float32)
        print(f"torch float32 vs float64: grad {k} {e:.2e}")
    save_file(out, "tests/golden/unet.safetensors")
    print("wrote tests/golden/unet.safetensors:", {k: list(v.shape) for k, v in out.items()})
    print("loss", loss.item(), "dice", dice.item())


if __name__ == "__main__":
    main()
