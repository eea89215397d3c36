#!/usr/bin/env python3
"""Keras golden for the notebook's model, fluke's `keras-seresnet34` (tests/network/keras.rs).

Builds segmentation_models 1.0.1's `Unet("seresnet34", encoder_weights=None, classes=1, activation="sigmoid")`
on tf.keras (tensorflow-cpu 2.15) in float64, fills every weight with the closed-form formula of
tools/golden_unet.py (tensor j = index in `model.weights`, which is fluke's order for this architecture; conv
kernels filled in OIHW order then transposed to Keras' HWIO), and saves to tests/golden/keras_unet.safetensors:
  small.x      [2, 3, 128, 192]  raw 0-255 pixels, BGR, NCHW (the model's own input)
  small.eval   [2, 1, 128, 192]  eval-mode logits (pre-sigmoid: the output of `final_conv`)
  small.mask   [2, 1, 128, 192]  the golden mask (src/model/mod.rs golden_batch)
  small.train  [2, 1, 128, 192]  training-mode logits (batch statistics)
  small.loss   [1]             sm.losses.bce_dice_loss(mask, sigmoid(train logits))
  small.moving.<layer>.{mean,var}  moving statistics after that one training-mode call
  mid.x [1, 3, 96, 192], mid.eval [1, 1, 96, 192]   eval mode at 192x96
  tests/fixtures/state_dict_keras_seresnet34.tsv: every weight's name, Keras shape and kind in model.weights order
  {small,mid}.keras_f32_error.{eval,train}  max |Keras float32 - this| / max |this|: Keras' own float32 error
  meta.eps.<layer>  the epsilon of a few BN layers as Keras built them (checked against fluke's constants)
Input: raw[n, c, h, w] = 127.5 + 120 * sin(0.0131 * i + 0.7 c) * cos(0.0047 * i), i the flat index of [n,c,h,w].

With --save-h5 FILE it also writes the filled model with `model.save_weights(FILE)` (the notebook's format, ~98
MB, not committed) for fluke's .h5 reader; with --small-h5 FILE it writes a reduced-width file of the same layout
(groups, attributes, names; shapes of fluke's width divisor 16) with h5py, committed as tests/fixtures/keras_w16.h5.

Usage, from the crate root: SM_FRAMEWORK=tf.keras DIR/bin/python tools/golden_keras.py [--save-h5 F] [--small-h5 F]
Environment: python3 -m venv DIR && DIR/bin/pip install tensorflow-cpu==2.15.1 segmentation-models==1.0.1 h5py
safetensors.
"""
import math
import os
import sys

os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
from safetensors.numpy import save_file

tf.keras.backend.set_floatx("float64")
import segmentation_models as sm  # noqa: E402


def role(name, shape):
    if len(shape) == 4:
        return "conv"
    if name.endswith("moving_variance:0"):
        return "var"
    if name.endswith("moving_mean:0"):
        return "mean"
    if name.endswith("gamma:0"):
        return "gamma"
    return "shift"


def fill(name, hwio, j):
    oihw = [hwio[3], hwio[2], hwio[0], hwio[1]] if len(hwio) == 4 else list(hwio)
    n = math.prod(oihw)
    i = np.arange(n, dtype=np.float64)
    s = np.sin(0.731 * i + 1.37 * j + 0.1)
    r = role(name, hwio)
    if r == "conv":
        v = (s * math.sqrt(3.0 / (oihw[1] * oihw[2] * oihw[3]))).reshape(oihw).transpose(2, 3, 1, 0)
        return v
    return {"var": 1.25 + 0.25 * s, "gamma": 1.0 + 0.1 * s}.get(r, 0.1 * s)


def raw_input(n, h, w):
    i = np.arange(n * 3 * h * w, dtype=np.float64)
    c = (i // (h * w)) % 3
    return (127.5 + 120.0 * np.sin(0.0131 * i + 0.7 * c) * np.cos(0.0047 * i)).reshape(n, 3, h, w)


def golden_mask(n, h, w):
    t = np.zeros((n, 1, h, w))
    for b in range(n):
        for y in range(h):
            for x in range(w):
                dy = (y - h / 2) / (h / 3)
                dx = (x - w / 2) / (w / 3 + 4 * b)
                t[b, 0, y, x] = float(dy * dy + dx * dx < 1)
    return t


def build(h, w):
    tf.keras.backend.clear_session()
    model = sm.Unet("seresnet34", encoder_weights=None, classes=1, activation="sigmoid", input_shape=(h, w, 3))
    for j, var in enumerate(model.weights):
        var.assign(fill(var.name, var.shape.as_list(), j))
    # The logits: the input of the final sigmoid.
    logits = tf.keras.Model(model.input, model.get_layer("final_conv").output)
    return model, logits


def nhwc(x):
    return x.transpose(0, 2, 3, 1)


def nchw(y):
    return np.asarray(y).transpose(0, 3, 1, 2)


def main():
    out = {}
    model, logits = build(128, 192)
    names = [v.name for v in model.weights]
    assert len(names) == 292, len(names)
    with open("tests/fixtures/state_dict_keras_seresnet34.tsv", "w") as f:
        f.write("part\tkey\tshape\tkind\n")
        decoder = False
        for v in model.weights:
            decoder = decoder or v.name.startswith("decoder_") or v.name.startswith("final_conv")
            kind = "param" if v.trainable else "buffer"
            f.write(f"{'decoder' if decoder else 'encoder'}\t{v.name}\t{v.shape.as_list()}\t{kind}\n")
    for layer in ["bn_data", "bn0", "stage3_unit2_bn1", "decoder_stage0a_bn", "decoder_stage4b_bn"]:
        out[f"meta.eps.{layer}"] = np.array([model.get_layer(layer).epsilon])
    x = raw_input(2, 128, 192)
    out["small.x"] = x
    out["small.eval"] = nchw(logits(nhwc(x), training=False))
    mask = golden_mask(2, 128, 192)
    out["small.mask"] = mask
    z = logits(nhwc(x), training=True)  # updates the moving statistics once
    out["small.train"] = nchw(z)
    loss = sm.losses.bce_dice_loss(tf.constant(nhwc(mask)), tf.sigmoid(z))
    out["small.loss"] = np.array([float(loss)])
    for layer in ["bn_data", "bn0", "stage2_unit1_bn1", "stage4_unit3_bn2", "bn1", "decoder_stage4b_bn"]:
        l = model.get_layer(layer)
        out[f"small.moving.{layer}.mean"] = l.moving_mean.numpy()
        out[f"small.moving.{layer}.var"] = l.moving_variance.numpy()
    model, logits = build(96, 192)
    x = raw_input(1, 96, 192)
    out["mid.x"] = x
    out["mid.eval"] = nchw(logits(nhwc(x), training=False))
    # Keras' own float32 error against this float64 reference, which scales the Rust test's bounds.
    tf.keras.backend.set_floatx("float32")
    for key, (n, h, w) in [("small", (2, 128, 192)), ("mid", (1, 96, 192))]:
        model, logits = build(h, w)
        x = nhwc(raw_input(n, h, w)).astype(np.float32)
        for mode, training in [("eval", False), ("train", True)]:
            if f"{key}.{mode}" in out:
                ref = out[f"{key}.{mode}"]
                z = nchw(logits(x, training=training))
                out[f"{key}.keras_f32_error.{mode}"] = np.array([np.abs(z - ref).max() / np.abs(ref).max()])
    args = sys.argv[1:]
    if "--save-h5" in args:
        # The notebook's files hold float32: save from a float32 build with the same fill.
        path = args[args.index("--save-h5") + 1]
        model, _ = build(96, 192)
        model.save_weights(path)
        print("wrote", path)
        if "--small-h5" in args:
            write_small_h5(args[args.index("--small-h5") + 1], path, [v.name for v in model.weights])
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}
    save_file(out, "tests/golden/keras_unet.safetensors")
    print("wrote tests/golden/keras_unet.safetensors:", {k: list(v.shape) for k, v in out.items() if "." in k and v.size < 8})


def write_small_h5(path, full_path, order, div=16):
    """The layout of the Keras `save_weights` file at `full_path` (root attributes backend, keras_version,
    layer_names; one group per layer with attribute weight_names; datasets at layer/weight-name; the strings
    variable-length as Keras writes them), with fluke's width-divisor-`div` shapes, filled with the same formula
    (tensor j = the weight's index in `order`, the model.weights order)."""
    import h5py

    def copy_attr(dst, src, name):
        tid = src.attrs.get_id(name).get_type()
        if not isinstance(tid, h5py.h5t.TypeStringID):  # an empty list: Keras writes a 0-length float array
            dst.attrs[name] = src.attrs[name]
            return
        enc = "utf-8" if tid.get_cset() == h5py.h5t.CSET_UTF8 else "ascii"
        dst.attrs.create(name, src.attrs[name], dtype=h5py.string_dtype(enc))

    with h5py.File(full_path, "r") as src, h5py.File(path, "w") as f:
        for name in ["backend", "keras_version", "layer_names"]:
            copy_attr(f, src, name)
        for layer in src.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            g, sg = f.create_group(layer), src[layer]
            copy_attr(g, sg, "weight_names")
            kernel = None
            for wname in sg.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                small = small_shape(wname, list(sg[wname].shape), div)
                if len(small) == 4:
                    kernel = small
                elif wname.endswith("/bias:0") and kernel is not None:
                    small = [kernel[3]]
                data = np.asarray(fill(wname, small, order.index(wname)), dtype=np.float32)
                g.create_dataset(wname, data=data)
    print("wrote", path)


def small_shape(name, shape, div):
    """fluke's width divisor on a Keras shape: C -> max(1, C / div) except the 3 input channels; an SE reduction
    (conv with 1x1 kernel whose output is C/16) becomes max(1, (C / div) / 16)."""
    def d(c):
        return c if c in (1, 3) else max(1, c // div)
    if len(shape) == 4:
        kh, kw, ci, co = shape
        se_reduce = kh == 1 and co * 16 == ci and "conv2d" in name
        se_expand = kh == 1 and ci * 16 == co and "conv2d" in name
        if se_reduce:
            return [1, 1, d(ci), max(1, d(ci) // 16)]
        if se_expand:
            return [1, 1, max(1, d(co) // 16), d(co)]
        return [kh, kw, d(ci), d(co)]
    return [d(shape[0])]


if __name__ == "__main__":
    main()
