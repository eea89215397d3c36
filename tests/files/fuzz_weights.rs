//! Property-based fuzzing of the safetensors loader (runs in CI on a budget): no input may panic; every failure is
//! an error naming the problem. Inputs: random bytes, truncations and byte flips of a valid fluke checkpoint, and
//! headers with hostile lengths/offsets/dtypes. Corpus seeds live in tests/corpus/.

use proptest::prelude::*;

use fluke::model::weights::parse_weight_bytes;

/// A small valid file (two tensors, one int64 counter) built with the safetensors crate.
fn valid_file() -> Vec<u8> {
    let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
    let b: Vec<u8> = 7i64.to_le_bytes().to_vec();
    let av = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 4], bytemuck::cast_slice(&a)).unwrap();
    let bv = safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &b).unwrap();
    safetensors::serialize(vec![("a.weight", av), ("bn.num_batches_tracked", bv)], None).unwrap()
}

#[test]
fn valid_file_parses() {
    let f = parse_weight_bytes(&valid_file()).unwrap();
    assert_eq!(f.tensors["a.weight"].shape, vec![3, 4]);
    assert_eq!(f.tensors["bn.num_batches_tracked"].data, vec![7.0]);
}

#[test]
fn corpus_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if !path.is_file() {
            continue; // tests/corpus/images/ belongs to fuzz_images
        }
        let bytes = std::fs::read(path).unwrap();
        let _ = parse_weight_bytes(&bytes);
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let v = valid_file();
    for cut in 0..v.len() {
        assert!(parse_weight_bytes(&v[..cut]).is_err(), "truncated at {cut} parsed");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_weight_bytes(&bytes);
    }

    #[test]
    fn flipped_bytes_never_panic(pos in 0usize..400, val in any::<u8>(), pos2 in 0usize..400, val2 in any::<u8>()) {
        let mut v = valid_file();
        let n = v.len();
        v[pos % n] = val;
        v[pos2 % n] = val2;
        let _ = parse_weight_bytes(&v);
    }

    #[test]
    fn hostile_headers_never_panic(
        dtype in prop::sample::select(vec!["F32", "F16", "BF16", "I64", "F64", "U8", "BOOL", "XYZ"]),
        d0 in 0usize..5, d1 in 0usize..1_000_000, start in 0usize..64, end in 0usize..64, extra in 0usize..64,
    ) {
        let header = format!(
            r#"{{"t":{{"dtype":"{dtype}","shape":[{d0},{d1}],"data_offsets":[{start},{end}]}},"__metadata__":{{"fluke.width_div":"x"}}}}"#
        );
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(std::iter::repeat_n(0u8, extra));
        let _ = parse_weight_bytes(&v);
    }
}
