"""Golden values for fluke's max_pool2d, from PyTorch (CPU, float32).

Run from the crate root:  DIR/bin/python tools/golden_max_pool2d.py
Environment: a Python with torch and safetensors; `bash ../shared/reference/setup.sh DIR` makes one, a venv in DIR
with the versions pinned in ../shared/reference/requirements.txt.
Writes tests/golden/max_pool2d.safetensors, read by tests/ops/max_pool2d.rs. For each case `cI`:
  cI.meta   [k, s, p, ceil_mode]            (float32)
  cI.x      input [N, C, H, W]              values without ties (a scaled permutation), so argmax is unambiguous
  cI.y      F.max_pool2d(x, k, s, p, ceil_mode=...)
  cI.idx    the indices PyTorch returns (return_indices=True), within each input plane, as float32 (exact < 2^24)
  cI.gy     a fixed random upstream gradient, shaped like y
  cI.dx     x.grad after y.backward(gy)
and `out_sizes` [rows, 6]: (input, k, s, p, ceil_mode, output length) for many small configurations, the output
length measured from a real F.max_pool2d call (so the Rust output-size rule is checked against PyTorch itself).
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)

# (N, C, H, W, k, s, p, ceil_mode): timm legacy_seresnet34's stem pool (3x3/2, pad 0, ceil) and resnet-style pad 1,
# on small odd planes standing in for 96x192.
CASES = [
    (2, 3, 7, 9, 3, 2, 0, True),
    (2, 3, 7, 9, 3, 2, 1, True),
    (1, 2, 12, 18, 3, 2, 0, True),
    (1, 2, 12, 18, 3, 2, 1, True),
    (2, 2, 13, 17, 3, 2, 0, True),
    (2, 2, 13, 17, 3, 2, 1, True),
    (2, 2, 13, 17, 3, 2, 1, False),
    (1, 3, 8, 8, 3, 2, 0, True),
]

out = {}
for i, (n, c, h, w, k, s, p, ceil) in enumerate(CASES):
    # A random permutation of distinct values: no two inputs are equal, so "first maximum" never matters.
    x = (torch.randperm(n * c * h * w).float() / (n * c * h * w) - 0.5).reshape(n, c, h, w)
    x.requires_grad_(True)
    y, idx = F.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
    gy = torch.randn_like(y)
    y.backward(gy)
    out[f"c{i}.meta"] = torch.tensor([k, s, p, float(ceil)], dtype=torch.float32)
    out[f"c{i}.x"] = x.detach().contiguous()
    out[f"c{i}.y"] = y.detach().contiguous()
    out[f"c{i}.idx"] = idx.to(torch.float32).contiguous()
    out[f"c{i}.gy"] = gy.contiguous()
    out[f"c{i}.dx"] = x.grad.contiguous()

rows = []
for size in range(1, 26):
    for k in (1, 2, 3, 4, 5):
        for s in (1, 2, 3):
            for p in range(0, k // 2 + 1):
                for ceil in (False, True):
                    if size + 2 * p < k:
                        continue
                    o = F.max_pool2d(torch.zeros(1, 1, size, 1), (k, 1), (s, 1), (p, 0), ceil_mode=ceil).shape[2]
                    rows.append([size, k, s, p, float(ceil), o])
out["out_sizes"] = torch.tensor(rows, dtype=torch.float32)

save_file(out, "tests/golden/max_pool2d.safetensors")
print(f"wrote {len(CASES)} cases and {len(rows)} output sizes to tests/golden/max_pool2d.safetensors")
