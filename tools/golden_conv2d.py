"""PyTorch golden values for conv2d: writes tests/golden/conv2d.safetensors.

Run from the crate root:  DIR/bin/python tools/golden_conv2d.py
Environment: a Python with torch and safetensors; `bash ../shared/reference/setup.sh DIR` makes one, a venv in DIR
with the versions pinned in ../shared/reference/requirements.txt.

For each case <name> it stores, in float32 (computed in float64, then rounded):
  <name>.x  [N, Cin, H, W]     <name>.w  [Cout, Cin, KH, KW]     <name>.b  [Cout] (only cases with bias)
  <name>.y  = F.conv2d(x, w, b, stride, padding)                 <name>.gy the fixed upstream gradient dL/dy
  <name>.gx, <name>.gw, <name>.gb  = gradients of L = sum(y * gy)
  <name>.meta = [stride, pad, has_bias] (float32)
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# name: (N, Cin, H, W, Cout, K, stride, pad, bias)
CASES = {
    "strided_3x3_s2": (2, 3, 9, 10, 4, 3, 2, 1, False),
    "padded_3x3": (2, 4, 7, 6, 5, 3, 1, 1, False),
    "shortcut_1x1_s2": (2, 6, 8, 9, 4, 1, 2, 0, False),
    "stem_7x7_s2_p3": (1, 3, 15, 13, 4, 7, 2, 3, False),
    "head_3x3_bias": (2, 5, 6, 7, 1, 3, 1, 1, True),
    "se_fc_1x1_bias": (3, 8, 1, 1, 2, 1, 1, 0, True),
}

torch.manual_seed(0)
out = {}
for name, (n, cin, h, w, cout, k, s, p, bias) in CASES.items():
    x = torch.randn(n, cin, h, w, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(cout, cin, k, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True) if bias else None
    # Round the inputs to f32 first so the Rust side sees exactly the values PyTorch used.
    with torch.no_grad():
        x.copy_(x.float().double())
        wt.copy_(wt.float().double())
        if b is not None:
            b.copy_(b.float().double())
    y = F.conv2d(x, wt, b, stride=s, padding=p)
    gy = torch.randn_like(y).float().double()
    (y * gy).sum().backward()
    t = {"x": x, "w": wt, "y": y, "gy": gy, "gx": x.grad, "gw": wt.grad}
    if b is not None:
        t["b"] = b
        t["gb"] = b.grad
    for key, v in t.items():
        out[f"{name}.{key}"] = v.detach().float().contiguous()
    out[f"{name}.meta"] = torch.tensor([s, p, int(bias)], dtype=torch.float32)

save_file(out, "tests/golden/conv2d.safetensors")
print(f"wrote {len(out)} tensors to tests/golden/conv2d.safetensors")
