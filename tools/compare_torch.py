#!/usr/bin/env python3
"""fluke predict against PyTorch on real photos: the end-to-end check of issue 11's table.

For each size WxH: builds segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16),
classes=1) with a seeded random init and randomised BN running statistics (eval mode), saves it as safetensors,
resizes each photo to WxH with Pillow (bicubic) and saves it as PNG (so fluke's own resize is the identity), runs
`fluke predict --tta none --save-probs` on those PNGs and compares fluke's probabilities with PyTorch's (float32,
the same ImageNet normalisation). Prints one line per size: max and mean |p_fluke - p_torch|.

Usage, from the crate root (FLUKE names the binary, default target/release/fluke):
  DIR/bin/python tools/compare_torch.py PHOTO_DIR [--sizes 384x192,192x96] [--count 2] [-- fluke args]
Any arguments after `--` go to fluke (e.g. `--backend gl`). Environment (VK_ICD_FILENAMES, ...) is passed through.
Python: torch, timm, segmentation_models_pytorch, safetensors, numpy and pillow; `bash ../shared/reference/setup.sh
DIR` makes a venv in DIR with them (versions pinned in ../shared/reference/requirements.txt).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import segmentation_models_pytorch as smp
import torch
from PIL import Image
from safetensors.torch import save_file

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def model(seed):
    torch.manual_seed(seed)
    m = smp.Unet("tu-legacy_seresnet34", encoder_weights=None, decoder_channels=(256, 128, 64, 32, 16), classes=1)
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
            mod.weight.data.copy_(1 + 0.1 * torch.randn(n, generator=g))
            mod.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return m.eval()


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos")
    ap.add_argument("--sizes", default="384x192,192x96")
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    fluke = os.environ.get("FLUKE", "target/release/fluke")
    photos = sorted(f for f in os.listdir(a.photos) if f.lower().endswith((".jpg", ".jpeg", ".png")))[: a.count]
    m = model(a.seed)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        wpath = os.path.join(tmp, "w.safetensors")
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, wpath)
        for size in a.sizes.split(","):
            w, h = map(int, size.split("x"))
            indir = os.path.join(tmp, f"in{size}")
            out = os.path.join(tmp, f"out{size}")
            os.makedirs(indir)
            xs = []
            for f in photos:
                img = Image.open(os.path.join(a.photos, f)).convert("RGB").resize((w, h), Image.BICUBIC)
                stem = os.path.splitext(f)[0]
                img.save(os.path.join(indir, stem + ".png"))
                x = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
                xs.append((stem, torch.from_numpy(x.transpose(2, 0, 1).copy())))
            cmd = [fluke, "predict", "--weights", wpath, "--input", indir, "--out", out, "--tta", "none",
                   "--save-probs", "--size", size] + extra
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{size}: fluke failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
                worst = float("inf")
                continue
            diffs = []
            with torch.no_grad():
                for stem, x in xs:
                    p = torch.sigmoid(m(x[None]))[0, 0].numpy()
                    q = np.load(os.path.join(out, stem + "_probs.npy")).reshape(p.shape)
                    diffs.append(np.abs(p - q))
            d = np.stack(diffs)
            worst = max(worst, float(d.max()))
            print(f"{size}: max abs diff {d.max():.2e}, mean {d.mean():.2e} over {len(xs)} photos")
    print(f"worst {worst:.2e}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
