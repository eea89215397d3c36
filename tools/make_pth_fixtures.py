#!/usr/bin/env python3
"""PyTorch .pth fixtures for fluke's .pth reader (tests/files/pth.rs), written by torch.save itself.

The weights are the golden fill of tools/golden_unet.py (fill_value: a closed-form formula per tensor) on the
state-dict layout of segmentation_models_pytorch.Unet("tu-legacy_seresnet34", decoder_channels=(256,128,64,32,16),
classes=1), at width divisor 16 (every channel count / 16, at least 1; the stem's 3 input channels kept; the SE
reduction stays 16, so its reduced channels are max(1, C/16)): the full network is 98 MB, this one 0.4 MB. Names,
order, dtypes and the OrderedDict `_metadata` come from the smp model; num_batches_tracked is 7 + its index, so the
int64 path is checked with values that are not zero.

Writes into tests/fixtures/:
  unet_w16.safetensors         the golden, f32 (safetensors.torch), what every .pth below must reproduce
  unet_w16_zip.pth             f32, zip format (torch >= 1.6 default)
  unet_w16_legacy.pth          f32, legacy format (_use_new_zipfile_serialization=False, like timm's seresnet34)
  unet_w16_f16_zip.pth         float tensors as float16, zip
  unet_w16_bf16_legacy.pth     float tensors as bfloat16, legacy; every 4-d weight stored channels-last (strided)
  unet_w16_wrapped.pth         {"epoch", "state_dict": {"module." + name: ...}, "optimizer": ...}, zip; every
                               tensor a view at element offset 5 of a larger storage (offsets, shared records)
  malicious_zip.pth, malicious_legacy.pth   a dict whose value pickles as a call of os.system: must be refused
and into tests/corpus/ (seeds of the fuzzer, tests/files/fuzz_pth.rs): small_zip.pth, small_legacy.pth, a 3x4
f32 tensor "a.weight" = 0.5 * arange(12) and an int64 "bn.num_batches_tracked" = 7; the same dict as
small_proto4_legacy.pth (pickle protocol 4: FRAME, MEMOIZE, STACK_GLOBAL), small_model_wrap_zip.pth (under "model",
beside an int), small_param_zip.pth ("a.weight" an nn.Parameter, plus "x" = arange(12).reshape(3, 4).t(), a
transposed view). `--corpus-only` rewrites just these (the zip records hold a random serialization id, so every
run changes every file's bytes).

Usage, from the crate root: ~/.fluke-ref-venv/bin/python tools/make_pth_fixtures.py
(a Python with torch, segmentation_models_pytorch and safetensors: ../shared/reference/setup.sh makes one).
"""
import collections
import os
import sys

import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from golden_unet import fill_value  # noqa: E402

K = 16
OUT = "tests/fixtures"


def reduced_shape(name, shape):
    """The width-K shape of a full-width tensor: channel dims (0 and 1) divided by K, at least 1."""
    if not shape:
        return []
    out = list(shape)
    for d in range(min(2, len(shape))):
        if name == "encoder.model.layer0.conv1.weight" and d == 1:
            continue  # the 3 RGB input channels
        out[d] = max(1, shape[d] // K)
    return out


def state_dict():
    full = smp.Unet("tu-legacy_seresnet34", encoder_weights=None, decoder_channels=(256, 128, 64, 32, 16), classes=1).state_dict()
    sd = collections.OrderedDict()
    j = 0
    for i, (k, v) in enumerate(full.items()):
        shape = reduced_shape(k, list(v.shape))
        if v.dtype.is_floating_point:
            sd[k] = fill_value(k, shape, j)
            j += 1
        else:
            sd[k] = torch.tensor(7 + i, dtype=v.dtype)
    sd._metadata = full._metadata
    return sd


def as_dtype(sd, dtype):
    out = collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
    out._metadata = sd._metadata
    return out


def channels_last(sd):
    out = collections.OrderedDict((k, v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v) for k, v in sd.items())
    out._metadata = sd._metadata
    return out


def offset_views(sd):
    """Every tensor a view at offset 5 of a storage 5 elements longer (torch.save stores the whole storage)."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        big = torch.cat([torch.full((5,), -1, dtype=v.dtype), v.flatten()])
        out["module." + k] = big[5:].view(v.shape)
    return out


class Shell:
    """Pickles as os.system("echo fluke-was-tricked"): a loader that runs it would print the line."""

    def __reduce__(self):
        return (os.system, ("echo fluke-was-tricked",))


def write_corpus(legacy):
    small = collections.OrderedDict([("a.weight", torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5),
                                     ("bn.num_batches_tracked", torch.tensor(7))])
    torch.save(small, "tests/corpus/small_zip.pth")
    torch.save(small, "tests/corpus/small_legacy.pth", **legacy)
    torch.save(small, "tests/corpus/small_proto4_legacy.pth", pickle_protocol=4, **legacy)
    torch.save({"model": small, "epoch": 3}, "tests/corpus/small_model_wrap_zip.pth")
    par = {"a.weight": torch.nn.Parameter(small["a.weight"].clone()), "bn.num_batches_tracked": small["bn.num_batches_tracked"],
           "x": torch.arange(12, dtype=torch.float32).reshape(3, 4).t()}
    torch.save(par, "tests/corpus/small_param_zip.pth")


def main():
    legacy = dict(_use_new_zipfile_serialization=False)
    write_corpus(legacy)
    if "--corpus-only" in sys.argv:
        return
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, f"{OUT}/unet_w16.safetensors", metadata={"format": "pt"})
    torch.save(sd, f"{OUT}/unet_w16_zip.pth")
    torch.save(sd, f"{OUT}/unet_w16_legacy.pth", **legacy)
    torch.save(as_dtype(sd, torch.float16), f"{OUT}/unet_w16_f16_zip.pth")
    torch.save(channels_last(as_dtype(sd, torch.bfloat16)), f"{OUT}/unet_w16_bf16_legacy.pth", **legacy)
    wrapped = {"epoch": 3, "state_dict": offset_views(sd), "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}}
    torch.save(wrapped, f"{OUT}/unet_w16_wrapped.pth")
    torch.save({"a.weight": torch.zeros(2), "evil": Shell()}, f"{OUT}/malicious_zip.pth")
    torch.save({"a.weight": torch.zeros(2), "evil": Shell()}, f"{OUT}/malicious_legacy.pth", **legacy)
    # The files must load back in PyTorch as what was saved (the safe loader refuses the malicious ones).
    for name in ["unet_w16_zip", "unet_w16_legacy", "unet_w16_f16_zip", "unet_w16_bf16_legacy", "unet_w16_wrapped"]:
        back = torch.load(f"{OUT}/{name}.pth", weights_only=True)
        back = back.get("state_dict", back)
        assert len(back) == len(sd), name
    for name in ["malicious_zip", "malicious_legacy"]:
        try:
            torch.load(f"{OUT}/{name}.pth", weights_only=True)
            raise SystemExit(f"{name}: torch's weights_only loader accepted it")
        except Exception as e:  # noqa: BLE001 - any refusal is what we want
            assert "system" in str(e), e
    for f in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, f)):>9} {OUT}/{f}")
    print("tensors:", len(sd), "floats:", sum(v.numel() for v in sd.values() if v.is_floating_point()))


if __name__ == "__main__":
    main()
