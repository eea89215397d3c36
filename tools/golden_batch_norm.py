"""Golden values for batch_norm from PyTorch (nn.BatchNorm2d, eps 1e-5, momentum 0.1).

Run from the crate root: DIR/bin/python tools/golden_batch_norm.py   (writes tests/golden/batch_norm.safetensors)
Environment: a Python with torch and safetensors; `bash ../shared/reference/setup.sh DIR` makes one, a venv in DIR
with the versions pinned in ../shared/reference/requirements.txt.

For each case <k> (shape [N, C, H, W]) the file holds, all float32:
  <k>.x, <k>.gamma, <k>.beta     inputs and affine parameters
  <k>.rm0, <k>.rv0               randomised running stats before the training forward
  <k>.gy                         fixed upstream gradient dL/dy
  <k>.y_train                    training-mode output (batch statistics)
  <k>.dx, <k>.dgamma, <k>.dbeta  gradients of sum(y_train * gy)
  <k>.rm1, <k>.rv1               running stats after that one training forward (unbiased variance)
  <k>.y_eval                     eval-mode output of the same x with rm1, rv1
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
CASES = {"a": (3, 5, 4, 6), "b": (1, 7, 9, 11)}

out = {}
for key, (n, c, h, w) in CASES.items():
    # Per-channel offset and scale, so the statistics are not trivially 0 and 1.
    x = torch.randn(n, c, h, w) * (1.0 + torch.arange(c).view(1, c, 1, 1) * 0.5) + torch.arange(c).view(1, c, 1, 1) * 3.0
    bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.5 * torch.randn(c))
        bn.bias.copy_(torch.randn(c))
        bn.running_mean.copy_(torch.randn(c))
        bn.running_var.copy_(0.5 + torch.rand(c))
    rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
    gy = torch.randn(n, c, h, w)

    bn.train()
    xg = x.clone().requires_grad_(True)
    y = bn(xg)
    (y * gy).sum().backward()

    bn.eval()
    with torch.no_grad():
        y_eval = bn(x)

    for name, t in {
        "x": x, "gamma": bn.weight.detach(), "beta": bn.bias.detach(), "rm0": rm0, "rv0": rv0, "gy": gy,
        "y_train": y.detach(), "dx": xg.grad, "dgamma": bn.weight.grad, "dbeta": bn.bias.grad,
        "rm1": bn.running_mean, "rv1": bn.running_var, "y_eval": y_eval,
    }.items():
        out[f"{key}.{name}"] = t.detach().to(torch.float32).contiguous()

path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "batch_norm.safetensors")
save_file(out, path)
print(f"wrote {path}: {len(out)} tensors")
