#!/usr/bin/env python3
"""PyTorch goldens for the whole U-Net at the sizes people run (tests/network/model_sizes.rs).

The model and its closed-form weights are those of tools/golden_unet.py (smp Unet "tu-legacy_seresnet34",
decoder_channels=(256,128,64,32,16), classes=1; `fill_value` there, reproduced by `UNet::fill_golden`). Cases:
  b2_96x192   input [2, 3, 96, 192]
  b1_192x384  input [1, 3, 192, 384]  (the default size)
Input x[i] = 0.5 sin(0.013 i) + 0.3 cos(0.0071 i) (flat index, as f32), mask as golden_unet.py.
Per case, in float64: eval-mode logits, train-mode logits, loss (BCE-with-logits + 1 - soft Dice), Dice, the running
statistics of every BN after the train-mode forward, and the gradient of EVERY parameter. So the file stays small,
each tensor T is stored as
  T.idx    64 sampled flat indices (float32; every index when the tensor has fewer), T.val their values,
  T.stats  [sum, sum of squares, max |value|, element count]
(running statistics in full). Per gradient, `torch_f32.<name>` = [sample error, sum-of-squares error] of PyTorch's
own float32 run against this float64 reference (also `torch_f32.eval_logits`, `.train_logits`, `.loss` = [|loss
error|, |Dice error|] and `.running_stats` = the largest max |error| / max |value| over the BN running statistics) (sample error: max |a - b| over the samples / max |b|; sum-of-squares
error: |sumsq_a - sumsq_b| / sumsq_b), which scales the Rust test's bounds.
Eval-mode gradients (BN on running statistics) likewise: `<tag>.egrad.<name>`, `torch_f32_e.<name>`.
Trajectory: 10 Adam steps (lr 1e-3, PyTorch defaults) on case b2_96x192 in train mode: `traj.loss` (float64 run) and
`traj.loss_f32` (PyTorch float32), the loss before each step; `traj.loss_f32_runs` [4, 10]: four float32 runs that
differ only in summation order (1 or 2 threads, NCHW or channels_last; the first is `traj.loss_f32`). Their spread is
PyTorch's own float32 noise, which the Rust test's trajectory bound scales with: one run's distance from float64 at a
given step can be near zero by chance (the 2-thread run's is 8e-4 at step 3, the 1-thread run's 5e-3).

Usage, from the crate root: DIR/bin/python tools/golden_unet_sizes.py [--trajectory-only]
(--trajectory-only recomputes the trajectory tensors and keeps every other tensor of the existing file as it is.)
Environment: a Python with torch, timm, segmentation_models_pytorch and safetensors; `bash
../shared/reference/setup.sh DIR` makes one, a venv in DIR with the versions pinned in
../shared/reference/requirements.txt.
Writes tests/golden/unet_sizes.safetensors.
"""
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from golden_unet import build  # noqa: E402  (the same model and fill)

CASES = {"b2_96x192": (2, 96, 192), "b1_192x384": (1, 192, 384)}
SAMPLES = 64


def inputs(n, h, w, dtype):
    i = torch.arange(n * 3 * h * w, dtype=torch.float64)
    x = (0.5 * torch.sin(0.013 * i) + 0.3 * torch.cos(0.0071 * i)).reshape(n, 3, h, w).to(torch.float32).to(dtype)
    hh = torch.arange(h, dtype=torch.float64).reshape(1, h, 1)
    ww = torch.arange(w, dtype=torch.float64).reshape(1, 1, w)
    nn_ = torch.arange(n, dtype=torch.float64).reshape(n, 1, 1)
    t = ((((hh - h / 2) / (h / 3)) ** 2 + ((ww - w / 2) / (w / 3 + 4 * nn_)) ** 2) < 1).to(dtype).reshape(n, 1, h, w)
    return x, t


def loss_fn(z, t):
    p = torch.sigmoid(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
    dice = (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return bce + 1 - dice, dice


def sample_idx(n):
    if n <= SAMPLES:
        return torch.arange(n, dtype=torch.int64)
    # Spread over the tensor, first and last included.
    return torch.tensor(sorted({0, n - 1} | {(j * 2654435761) % n for j in range(SAMPLES - 2)}), dtype=torch.int64)


def summary(out, key, v):
    v = v.detach().reshape(-1).double()
    idx = sample_idx(v.numel())
    out[key + ".idx"] = idx.to(torch.float32)
    out[key + ".val"] = v[idx].to(torch.float32)
    out[key + ".stats"] = torch.tensor([v.sum(), (v * v).sum(), v.abs().max(), v.numel()], dtype=torch.float64).to(torch.float32)


def errors(a, b):
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    idx = sample_idx(b.numel())
    scale = b.abs().max().clamp_min(1e-30)
    s = ((a[idx] - b[idx]).abs().max() / scale).item()
    q = ((a * a).sum() - (b * b).sum()).abs().item() / max((b * b).sum().item(), 1e-30)
    return s, q


def run_case(out, tag, n, h, w):
    m = build().double()
    x, t = inputs(n, h, w, torch.float64)
    m.eval()
    with torch.no_grad():
        out_eval = [m(x)]
        summary(out, f"{tag}.eval_logits", out_eval[0])
    # Eval-mode gradients (BN on running statistics: far better conditioned in float32 than train mode).
    le, _ = loss_fn(m(x), t)
    le.backward()
    for k, p in m.named_parameters():
        summary(out, f"{tag}.egrad.{k}", p.grad)
    eval_grads = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad()
    m.train()
    z = m(x)
    loss, dice = loss_fn(z, t)
    loss.backward()
    summary(out, f"{tag}.train_logits", z)
    out[f"{tag}.loss"] = loss.detach().reshape(1).float()
    out[f"{tag}.dice"] = dice.detach().reshape(1).float()
    for k, p in m.named_parameters():
        summary(out, f"{tag}.grad.{k}", p.grad)
    for k, v in m.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            out[f"{tag}.after.{k}"] = v.float().contiguous()
    # PyTorch's own float32 error: logits, loss, running statistics, each gradient.
    m32 = build()
    x32, t32 = inputs(n, h, w, torch.float32)
    m32.eval()
    with torch.no_grad():
        e32 = m32(x32)
    le32, _ = loss_fn(m32(x32), t32)
    le32.backward()
    for k, p in m32.named_parameters():
        out[f"{tag}.torch_f32_e.{k}"] = torch.tensor(errors(p.grad, eval_grads[k]), dtype=torch.float32)
    m32.zero_grad()
    m32.train()
    z32 = m32(x32)
    l32, d32 = loss_fn(z32, t32)
    l32.backward()
    out[f"{tag}.torch_f32.eval_logits"] = torch.tensor(errors(e32, out_eval[0]), dtype=torch.float32)
    out[f"{tag}.torch_f32.train_logits"] = torch.tensor(errors(z32, z), dtype=torch.float32)
    out[f"{tag}.torch_f32.loss"] = torch.tensor([abs(l32.item() - loss.item()), abs(d32.item() - dice.item())], dtype=torch.float32)
    sd32, sd64 = m32.state_dict(), m.state_dict()
    rs = max(((sd32[k].double() - sd64[k]).abs().max() / sd64[k].abs().max()).item()
             for k in sd64 if k.endswith("running_mean") or k.endswith("running_var"))
    out[f"{tag}.torch_f32.running_stats"] = torch.tensor([rs], dtype=torch.float32)
    print(f"{tag}: torch f32 errors: eval logits {out[f'{tag}.torch_f32.eval_logits'].tolist()}, train logits "
          f"{out[f'{tag}.torch_f32.train_logits'].tolist()}, running stats {rs:.2e}")
    g64 = dict(m.named_parameters())
    worst = 0.0
    for k, p in m32.named_parameters():
        s, q = errors(p.grad, g64[k].grad)
        worst = max(worst, s)
        out[f"{tag}.torch_f32.{k}"] = torch.tensor([s, q], dtype=torch.float32)
    print(f"{tag}: loss {loss.item():.6f} dice {dice.item():.6f}; torch f32 worst gradient sample error {worst:.2e}")


# The float32 trajectory runs: (threads, channels_last). The first is `traj.loss_f32`.
F32_RUNS = [(2, False), (1, False), (2, True), (1, True)]


def trajectory(dtype, steps=10, threads=2, channels_last=False):
    torch.set_num_threads(threads)
    n, h, w = CASES["b2_96x192"]
    m = build().to(dtype)
    m.train()
    x, t = inputs(n, h, w, dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = loss_fn(m(x), t)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return losses


def main():
    torch.set_num_threads(2)
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "unet_sizes.safetensors")
    if "--trajectory-only" in sys.argv[1:]:
        out = dict(load_file(path))
    else:
        out = {}
        for tag, (n, h, w) in CASES.items():
            run_case(out, tag, n, h, w)
    t64 = trajectory(torch.float64)
    t32s = [trajectory(torch.float32, threads=th, channels_last=cl) for th, cl in F32_RUNS]
    torch.set_num_threads(2)
    out["traj.loss"] = torch.tensor(t64, dtype=torch.float64).float()
    out["traj.loss_f32"] = torch.tensor(t32s[0], dtype=torch.float32)
    out["traj.loss_f32_runs"] = torch.tensor(t32s, dtype=torch.float32)
    print("trajectory f64:", [f"{v:.6f}" for v in t64])
    for (th, cl), t32 in zip(F32_RUNS, t32s):
        print(f"trajectory f32 ({th} threads{', channels_last' if cl else ''}):", [f"{v - b:+.1e}" for v, b in zip(t32, t64)])
    out = {k: v.contiguous() for k, v in out.items()}
    save_file(out, path)
    print(f"wrote {os.path.normpath(path)}: {len(out)} tensors, {os.path.getsize(path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
