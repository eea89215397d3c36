//! Property-based fuzzing of the Keras .h5 reader (`model::h5`, through the same entry point every command uses):
//! no input may panic; every failure is an error. Inputs: byte flips (anywhere, and concentrated in the first 8 KiB
//! where HDF5 keeps the superblock and root metadata), truncations and random bytes behind the HDF5 signature, all
//! starting from tests/fixtures/keras_w16.h5 (the layout of a real tf.keras save_weights file).

use proptest::prelude::*;

use fluke::model::weights::parse_weight_bytes;

fn fixture() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_w16.h5")).unwrap())
}

#[test]
fn the_fixture_parses_with_every_weight() {
    let f = parse_weight_bytes(fixture()).unwrap();
    assert_eq!(f.tensors.len(), 292);
    assert_eq!(f.tensors["conv0/kernel:0"].shape, vec![4, 3, 7, 7], "HWIO [7,7,3,4] read as OIHW");
    assert_eq!(f.metadata["fluke.arch"], "unet-keras-seresnet34");
}

#[test]
fn truncations_are_errors_not_panics() {
    let v = fixture();
    let step = (v.len() / 97).max(1);
    for cut in (0..v.len()).step_by(step) {
        let r = parse_weight_bytes(&v[..cut]);
        assert!(r.is_err(), "truncated at {cut} of {} parsed", v.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(pos in 0usize..1_000_000, val in any::<u8>(), head in 8usize..8192, val2 in any::<u8>()) {
        let mut v = fixture().to_vec();
        let n = v.len();
        v[pos % n] = val;
        v[head % n] = val2;
        let _ = parse_weight_bytes(&v);
    }

    #[test]
    fn random_bytes_after_the_signature_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut v = fluke::model::h5::MAGIC.to_vec();
        v.extend(tail);
        prop_assert!(parse_weight_bytes(&v).is_err());
    }
}
