"""Golden values for bce_dice from PyTorch: BCEWithLogits (mean) + 1 - soft Dice over the whole batch.

Run from the crate root: DIR/bin/python tools/golden_bce_dice.py   (writes tests/golden/bce_dice.safetensors)
Environment: a Python with torch and safetensors; `bash ../shared/reference/setup.sh DIR` makes one, a venv in DIR
with the versions pinned in ../shared/reference/requirements.txt.

    p    = sigmoid(z)
    dice = (2 * sum(p * t) + 1) / (sum(p) + sum(t) + 1)
    loss = binary_cross_entropy_with_logits(z, t, reduction="mean") + 1 - dice

For each case <k>, float32: <k>.z [N,1,H,W], <k>.t (mask in {0,1}), <k>.loss [1], <k>.dice [1],
<k>.dz = d loss / d z (upstream gradient 1), computed in float64 and stored as float32.
Case "b" mixes extreme logits (+-1e4, +-100) with ordinary ones.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)


def bce_dice(z, t):
    p = torch.sigmoid(z)
    dice = (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return F.binary_cross_entropy_with_logits(z, t, reduction="mean") + 1 - dice, dice


out = {}
cases = {}
z = torch.randn(2, 1, 8, 12) * 3
cases["a"] = (z, (torch.rand(2, 1, 8, 12) < torch.sigmoid(z + 0.5)).float())
z = torch.randn(3, 1, 5, 7) * 4
z.view(-1)[::7] = 1e4
z.view(-1)[3::7] = -1e4
z.view(-1)[5::11] = 100.0
z.view(-1)[6::11] = -100.0
cases["b"] = (z, (torch.rand(3, 1, 5, 7) < 0.5).float())

for key, (z, t) in cases.items():
    # float64 reference from the float32 inputs (the test compares with f32 tolerances).
    z64 = z.to(torch.float64).requires_grad_(True)
    loss, dice = bce_dice(z64, t.to(torch.float64))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z64.grad).all()
    for name, v in {"z": z, "t": t, "loss": loss.detach().reshape(1), "dice": dice.detach().reshape(1), "dz": z64.grad}.items():
        out[f"{key}.{name}"] = v.detach().to(torch.float32).contiguous()

path = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "bce_dice.safetensors")
save_file(out, path)
print(f"wrote {path}: {len(out)} tensors")
