//! Every shader parses and validates with naga (no GPU needed), and every WGSL `Params` struct has the size of its
//! Rust mirror.

use fluke::ops::{PARAMS_SIZES, SHADERS};

#[test]
fn every_shader_parses_and_validates() {
    assert!(!SHADERS.is_empty());
    for &(file, src) in SHADERS {
        fluke::gpu::parse_shader(file, src).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_params_struct_matches_its_rust_mirror() {
    for &(file, src) in SHADERS {
        let (module, _) = fluke::gpu::parse_shader(file, src).unwrap();
        let wgsl = module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params"));
        let Some((_, ty)) = wgsl else { continue };
        let naga::TypeInner::Struct { span, .. } = ty.inner else { panic!("{file}: Params is not a struct") };
        let rust = PARAMS_SIZES
            .iter()
            .find(|(f, _)| *f == file)
            .unwrap_or_else(|| panic!("{file}: declares Params but ops::PARAMS_SIZES has no Rust mirror for it"))
            .1;
        assert_eq!(span as usize, rust, "{file}: WGSL Params is {span} bytes, the Rust mirror {rust}");
    }
}

#[test]
fn entry_points_are_named_after_their_file() {
    // One op, one name: entry points in shaders/<op>.wgsl start with "<op>_".
    for &(file, src) in SHADERS {
        let (module, _) = fluke::gpu::parse_shader(file, src).unwrap();
        let op = file.trim_end_matches(".wgsl");
        for ep in &module.entry_points {
            assert!(ep.name.starts_with(&format!("{op}_")), "{file}: entry point {} should start with {op}_", ep.name);
        }
    }
}
