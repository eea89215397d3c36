#!/usr/bin/env python3
"""Convert a PyTorch checkpoint (.pth/.pt) into a .safetensors file (optional: fluke reads .pth files itself, and
`fluke export --weights IN.pth --out OUT.safetensors` does this conversion without Python).

Accepted inputs:
  - a full smp state_dict: segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16),
    classes=1).state_dict()  -> load with `fluke predict/eval --weights OUT` or `fluke train --init OUT`;
  - a bare timm legacy_seresnet34 state_dict (e.g. the ImageNet weights seresnet34-a4004e63.pth)
    -> `fluke train --init OUT` initialises the encoder only (last_linear.* is ignored);
  - a checkpoint dict wrapping either of them under "state_dict" or "model" (PyTorch Lightning and common trainers).

Tensors are written as float32 (num_batches_tracked stays int64). Requires torch and safetensors:
  python3 tools/to_safetensors.py IN.pth OUT.safetensors [--half]   (--half writes float16 to halve the size)
"""
import argparse

import torch
from safetensors.torch import save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--half", action="store_true", help="store floating-point tensors as float16")
    a = ap.parse_args()
    obj = torch.load(a.input, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise SystemExit(f"{a.input}: not a state_dict (got {type(obj).__name__})")
    out = {}
    for k, v in obj.items():
        k = k.removeprefix("module.")  # DataParallel
        if not torch.is_tensor(v):
            continue
        if v.is_floating_point():
            v = v.to(torch.float16 if a.half else torch.float32)
        out[k] = v.contiguous()
    save_file(out, a.output, metadata={"format": "pt"})
    print(f"wrote {a.output}: {len(out)} tensors")


if __name__ == "__main__":
    main()
