#!/usr/bin/env bash
# Build the browser page into OUTDIR: the library and src/web/lib.rs for wasm32 (WebGPU), wasm-bindgen's JS glue,
# and the page (src/web/index.html, fluke.js). Serve OUTDIR with any static server, e.g.
#   python3 -m http.server -b 127.0.0.1 -d OUTDIR 8000     then open http://127.0.0.1:8000/
# Needs: rustup target add wasm32-unknown-unknown, and wasm-bindgen-cli at the version in Cargo.lock
#   cargo install wasm-bindgen-cli --version "$(bash tools/build-web.sh --wasm-bindgen-version)"
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "${1:-}" = "--wasm-bindgen-version" ]; then echo "$want"; exit 0; fi
out=${1:?usage: bash tools/build-web.sh OUTDIR}
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}') || true
if [ "$have" != "$want" ]; then
    echo "build-web: need wasm-bindgen $want (Cargo.lock), found '${have:-none}': cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || {
    echo "build-web: the wasm32 target is missing: rustup target add wasm32-unknown-unknown" >&2
    exit 1
}
cargo build --profile web -p fluke-web --target wasm32-unknown-unknown
mkdir -p "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" target/wasm32-unknown-unknown/web/fluke_web.wasm
cp src/web/index.html src/web/fluke.js "$out"/
echo "build-web: $out ($(du -k "$out/fluke_web_bg.wasm" | cut -f1) KiB of wasm)"
