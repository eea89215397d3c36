//! Property-based fuzzing of the .pth reader (src/model/pth.rs), like fuzz_weights.rs for safetensors: no input may
//! panic, overflow the stack or allocate without bound; every failure is an error. Inputs: every truncation and
//! random byte flips of the two small torch files in tests/corpus/ (small_zip.pth, small_legacy.pth, written by
//! tools/make_pth_fixtures.py), random bytes behind each format's signature, and random pickle programs built from
//! the opcodes the reader knows (so the machine itself is exercised, not just its first check).

use proptest::prelude::*;

use fluke::model::pth::parse_pth_bytes;
use fluke::model::weights::parse_weight_bytes;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name)).unwrap()
}

/// The start of a legacy file: PROTO 2 and torch's magic number, as torch writes it.
const LEGACY_HEAD: [u8; 15] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];

#[test]
fn the_small_files_parse() {
    for name in ["small_zip.pth", "small_legacy.pth"] {
        let f = parse_pth_bytes(&corpus(name)).unwrap();
        assert_eq!(f.tensors.len(), 2, "{name}");
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for name in ["small_zip.pth", "small_legacy.pth"] {
        let v = corpus(name);
        for cut in 0..v.len() {
            assert!(parse_weight_bytes(&v[..cut]).is_err(), "{name} truncated at {cut} parsed");
        }
    }
}

#[test]
fn deep_nesting_and_cycles_do_not_overflow() {
    // 100,000 nested empty lists, and a dict that holds itself (via the memo) as its state dict.
    let mut deep = LEGACY_HEAD.to_vec();
    deep.extend_from_slice(&[0x80, 0x02]);
    deep.extend(std::iter::repeat_n(b'(', 100_000));
    deep.extend(std::iter::repeat_n(b'l', 100_000));
    deep.push(b'.');
    assert!(parse_pth_bytes(&deep).is_err());
    // EMPTY_DICT BINPUT 0, then d["model"] = d, repeated: the wrapper search must stop.
    let mut cyc = vec![0x80, 0x02, b'}', b'q', 0, 0x8c, 5];
    cyc.extend_from_slice(b"model");
    cyc.extend_from_slice(&[b'h', 0, b's', b'.']);
    let mut file = LEGACY_HEAD.to_vec();
    file.extend_from_slice(&[0x80, 0x02, b'M', 0xe9, 0x03, b'.', 0x80, 0x02, b'}', b'.']);
    file.extend_from_slice(&cyc);
    file.extend_from_slice(&[0x80, 0x02, b']', b'.']); // the (empty) storage list
    let e = parse_pth_bytes(&file).err().expect("a cyclic dict is not a state dict");
    assert!(format!("{e:#}").contains("holds no tensors"), "{e:#}");
}

/// Opcodes the machine knows, with a valid-looking argument; the fuzzer strings them together.
fn op() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![b'(']),
        Just(vec![b'}']),
        Just(vec![b']']),
        Just(vec![b')']),
        Just(vec![b't']),
        Just(vec![0x85]),
        Just(vec![0x86]),
        Just(vec![b's']),
        Just(vec![b'u']),
        Just(vec![b'a']),
        Just(vec![b'e']),
        Just(vec![b'R']),
        Just(vec![b'b']),
        Just(vec![b'Q']),
        Just(vec![b'0']),
        Just(vec![b'2']),
        Just(vec![b'N']),
        Just(vec![0x88]),
        Just(vec![0x94]),
        any::<u8>().prop_map(|k| vec![b'K', k]),
        any::<u8>().prop_map(|k| vec![b'q', k % 8]),
        any::<u8>().prop_map(|k| vec![b'h', k % 8]),
        Just(b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec()),
        Just(b"ccollections\nOrderedDict\n".to_vec()),
        Just(b"ctorch\nFloatStorage\n".to_vec()),
        Just(b"ctorch\nLongStorage\n".to_vec()),
        prop::sample::select(vec!["storage", "0", "cpu", "a.weight", "state_dict"])
            .prop_map(|s| [vec![0x8c, s.len() as u8], s.as_bytes().to_vec()].concat()),
        any::<[u8; 3]>().prop_map(|b| b.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(zip in any::<bool>(), pos in 0usize..4096, val in any::<u8>(), pos2 in 0usize..4096, val2 in any::<u8>()) {
        let mut v = corpus(if zip { "small_zip.pth" } else { "small_legacy.pth" });
        let n = v.len();
        v[pos % n] = val;
        v[pos2 % n] = val2;
        let _ = parse_weight_bytes(&v);
    }

    #[test]
    fn random_bytes_behind_a_signature_never_panic(zip in any::<bool>(), bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut v = if zip { b"PK\x03\x04".to_vec() } else { LEGACY_HEAD.to_vec() };
        v.extend_from_slice(&bytes);
        let _ = parse_weight_bytes(&v);
    }

    #[test]
    fn random_pickle_programs_never_panic(ops in proptest::collection::vec(op(), 0..60), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        // The legacy container's first three pickles, then the program as its main pickle, then random bytes.
        let mut v = LEGACY_HEAD.to_vec();
        v.extend_from_slice(&[0x80, 0x02, b'M', 0xe9, 0x03, b'.', 0x80, 0x02, b'}', b'.', 0x80, 0x02]);
        for o in &ops {
            v.extend_from_slice(o);
        }
        v.push(b'.');
        v.extend_from_slice(&tail);
        let _ = parse_pth_bytes(&v);
    }
}
