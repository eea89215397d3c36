//! PyTorch .pth files read directly (src/model/pth.rs) against the safetensors golden they were saved from.
//!
//! Fixtures: tools/make_pth_fixtures.py (torch.save of the golden fill of tools/golden_unet.py on the smp state-dict
//! layout at width divisor 16, in both torch containers, f32/f16/bf16, strided and offset views, a trainer wrapper,
//! and two pickles that call os.system). Every tensor must come out bit-identical to tests/fixtures/unet_w16.safetensors
//! (rounded to f16/bf16 for those files, which is what torch's `.to(dtype)` did).

use std::path::{Path, PathBuf};

use fluke::model::pth::{detect_pth, PthFormat};
use fluke::model::weights::{parse_safetensors_bytes, read_weight_file, WeightFile};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn golden() -> WeightFile {
    parse_safetensors_bytes(&std::fs::read(fixture("unet_w16.safetensors")).unwrap()).unwrap()
}

/// Every name, shape, int flag and value bit of `got` equals `golden` with floats passed through `round`.
fn assert_same(file: &str, got: &WeightFile, golden: &WeightFile, round: fn(f32) -> f32) {
    let mut a: Vec<&String> = got.tensors.keys().collect();
    let mut b: Vec<&String> = golden.tensors.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "{file}: tensor names differ");
    assert_eq!(a.len(), 342, "{file}: the smp state dict has 342 tensors");
    let mut ints = 0;
    for (name, g) in &golden.tensors {
        let t = &got.tensors[name];
        assert_eq!(t.shape, g.shape, "{file}: {name} shape");
        assert_eq!(t.is_int, g.is_int, "{file}: {name} int flag");
        ints += t.is_int as usize;
        assert_eq!(t.data.len(), g.data.len(), "{file}: {name} length");
        for (i, (x, y)) in t.data.iter().zip(&g.data).enumerate() {
            let want = if g.is_int { *y } else { round(*y) };
            assert_eq!(x.to_bits(), want.to_bits(), "{file}: {name}[{i}] = {x}, golden {want}");
        }
    }
    assert_eq!(ints, 46, "{file}: one num_batches_tracked per batch norm (46)");
}

#[test]
fn every_pth_fixture_matches_the_golden_bit_for_bit() {
    let g = golden();
    // The counters are 7 + their state-dict index: a reader that dropped ints to 0 would fail here.
    assert_eq!(g.tensors["encoder.model.layer0.bn1.num_batches_tracked"].data, vec![7.0 + 5.0]);
    let exact: fn(f32) -> f32 = |x| x;
    let f16: fn(f32) -> f32 = |x| half::f16::from_f32(x).to_f32();
    let bf16: fn(f32) -> f32 = |x| half::bf16::from_f32(x).to_f32();
    for (file, format, round) in [
        ("unet_w16_zip.pth", PthFormat::Zip, exact),
        ("unet_w16_legacy.pth", PthFormat::Legacy, exact),
        ("unet_w16_f16_zip.pth", PthFormat::Zip, f16),
        ("unet_w16_bf16_legacy.pth", PthFormat::Legacy, bf16),
        ("unet_w16_wrapped.pth", PthFormat::Zip, exact),
    ] {
        let bytes = std::fs::read(fixture(file)).unwrap();
        assert_eq!(detect_pth(&bytes), Some(format), "{file}: format");
        let got = read_weight_file(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert_same(file, &got, &g, round);
    }
    // The rounding is not the identity: the f16 check above would catch a reader that skipped it.
    let w = &g.tensors["encoder.model.layer1.0.conv1.weight"].data;
    assert!(w.iter().any(|&x| f16(x) != x) && w.iter().any(|&x| bf16(x) != f16(x)));
}

#[test]
fn the_format_comes_from_the_bytes_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let g = golden();
    // A .pth named .safetensors, and a safetensors named .pth, both load.
    let a = dir.path().join("weights.safetensors");
    std::fs::copy(fixture("unet_w16_legacy.pth"), &a).unwrap();
    assert_same("legacy as .safetensors", &read_weight_file(&a).unwrap(), &g, |x| x);
    let b = dir.path().join("weights.pth");
    std::fs::copy(fixture("unet_w16.safetensors"), &b).unwrap();
    assert_same("safetensors as .pth", &read_weight_file(&b).unwrap(), &g, |x| x);
}

#[test]
fn a_pickle_that_calls_code_is_refused_naming_it() {
    for file in ["malicious_zip.pth", "malicious_legacy.pth"] {
        let e = format!("{:#}", read_weight_file(&fixture(file)).err().unwrap_or_else(|| panic!("{file} was accepted")));
        assert!(e.contains(file), "{file}: the error names the file: {e}");
        assert!(e.contains("posix.system") || e.contains("os.system"), "{file}: the error names the global: {e}");
        assert!(e.contains("torch.save(model.state_dict(), path)"), "{file}: the error gives the fix: {e}");
        assert!(!e.contains('\n'), "{file}: one line: {e}");
    }
}

#[test]
fn small_corpus_files_hold_what_the_script_saved() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for file in ["small_zip.pth", "small_legacy.pth", "small_proto4_legacy.pth", "small_model_wrap_zip.pth", "small_param_zip.pth"] {
        let f = read_weight_file(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let a = &f.tensors["a.weight"];
        assert_eq!(a.shape, vec![3, 4], "{file}");
        assert_eq!(a.data, (0..12).map(|i| i as f32 * 0.5).collect::<Vec<_>>(), "{file}");
        let n = &f.tensors["bn.num_batches_tracked"];
        assert!(n.is_int && n.shape.is_empty() && n.data == vec![7.0], "{file}");
        assert_eq!(f.tensors.len(), if file == "small_param_zip.pth" { 3 } else { 2 }, "{file}: the wrapper's int is no tensor");
    }
    // x = arange(12).reshape(3, 4).t(): shape [4, 3], strides (1, 4) into its storage, gathered in C order.
    let x = &read_weight_file(&dir.join("small_param_zip.pth")).unwrap().tensors["x"];
    assert_eq!(x.shape, vec![4, 3]);
    assert_eq!(x.data, vec![0.0, 4.0, 8.0, 1.0, 5.0, 9.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0]);
    // Protocol 4 frames its pickles: the file has the FRAME opcode the reader skips.
    assert_eq!(std::fs::read(dir.join("small_proto4_legacy.pth")).unwrap()[2], 0x95);
}

/// A legacy file written byte by byte (the layout of src/model/pth.rs's header), with torch < 0.4's
/// `_rebuild_tensor` and a strided view: w = storage[1::2] of a 7-element storage, shape [3], stride [2], offset 1.
#[test]
fn a_hand_written_legacy_file_with_the_oldest_tensor_rebuild() {
    let str8 = |s: &str| [vec![0x8c, s.len() as u8], s.as_bytes().to_vec()].concat();
    let mut f = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.']; // magic
    f.extend_from_slice(&[0x80, 0x02, b'M', 0xe9, 0x03, b'.']); // protocol version 1001
    f.extend_from_slice(&[0x80, 0x02, b'}', b'.']); // sys_info (empty: little-endian assumed)
    // {"w": _rebuild_tensor(("storage", FloatStorage, "k0", "cpu", 7, None) as a persistent id, 1, (3,), (2,))}
    f.extend_from_slice(&[0x80, 0x02, b'}']);
    f.extend(str8("w"));
    f.extend_from_slice(b"ctorch._utils\n_rebuild_tensor\n((");
    f.extend(str8("storage"));
    f.extend_from_slice(b"ctorch\nFloatStorage\n");
    f.extend(str8("k0"));
    f.extend(str8("cpu"));
    f.extend_from_slice(&[b'K', 7, b'N', b't', b'Q', b'K', 1, b'K', 3, 0x85, b'K', 2, 0x85, b't', b'R', b's', b'.']);
    f.extend_from_slice(&[0x80, 0x02, b']']); // the storage keys: ["k0"]
    f.extend(str8("k0"));
    f.extend_from_slice(b"a.");
    f.extend_from_slice(&7u64.to_le_bytes()); // the storage: 7 elements, 0.0 .. 6.0
    for i in 0..7 {
        f.extend_from_slice(&(i as f32).to_le_bytes());
    }
    let w = fluke::model::pth::parse_pth_bytes(&f).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(w.tensors["w"].shape, vec![3]);
    assert_eq!(w.tensors["w"].data, vec![1.0, 3.0, 5.0]);
    // The same view of a 5-element storage: its last element (index 5) lies past the end, an error.
    let mut short = f.clone();
    let at = short.len() - 7 * 4 - 8;
    short[at..at + 8].copy_from_slice(&5u64.to_le_bytes());
    short.truncate(short.len() - 2 * 4);
    let e = format!("{:#}", fluke::model::pth::parse_pth_bytes(&short).err().expect("a view past its storage"));
    assert!(e.contains("reaches past its storage of 5 elements"), "{e}");
}
