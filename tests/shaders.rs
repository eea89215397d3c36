//! Every shader parses and validates with naga (no GPU needed), and every WGSL `Params` struct has the size of its
//! Rust mirror.

use fluke::ops::{PARAMS_SIZES, SHADERS, SUBGROUP_SHADERS};

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

/// Every file in shaders/ is compiled by the runtime: registered in `ops::SHADERS` or `ops::SUBGROUP_SHADERS` (a file
/// nobody registers is never validated, never run, and rots).
#[test]
fn every_file_in_the_shaders_folder_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = SHADERS.iter().chain(SUBGROUP_SHADERS).map(|(f, _)| f.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered, "shaders/ and ops::SHADERS + ops::SUBGROUP_SHADERS differ");
    // And each registered source ends with the file's current text (a subgroup file is registered appended to its
    // op's file).
    for &(file, src) in SHADERS.iter().chain(SUBGROUP_SHADERS) {
        assert!(src.ends_with(&std::fs::read_to_string(dir.join(file)).unwrap()), "{file}: registered source is stale");
    }
}

/// The portable shaders validate WITHOUT the subgroup capability (so a device without subgroups can run them), and
/// the subgroup shader validates (appended to its op's file, as the runtime compiles it) with it, on the CPU.
#[test]
fn portable_shaders_need_no_subgroups_and_the_subgroup_shader_validates() {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    for &(file, src) in SHADERS {
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
        Validator::new(ValidationFlags::all(), Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{file} needs a capability (subgroups?) to validate: {}", e.emit_to_string(src)));
    }
    for &(file, src) in SUBGROUP_SHADERS {
        // Registered as the runtime compiles it: appended to its op's file.
        let op = file.split('_').next().unwrap();
        let base = SHADERS.iter().find(|(f, _)| f.trim_end_matches(".wgsl") == op).unwrap_or_else(|| panic!("{file}: no op file {op}.wgsl"));
        assert!(src.starts_with(base.1), "{file} is not registered appended to {}", base.0);
        let full = src.to_string();
        let module = naga::front::wgsl::parse_str(&full).unwrap_or_else(|e| panic!("{} + {file}: {}", base.0, e.emit_to_string(&full)));
        Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{} + {file}: {}", base.0, e.emit_to_string(&full)));
        // Without the capability it must be rejected: the file really is the subgroup variant set.
        assert!(
            Validator::new(ValidationFlags::all(), Capabilities::empty()).validate(&module).is_err(),
            "{file} validates without subgroups: it should live in the portable file"
        );
    }
}
