//! The op registry (`ops::OPS`) against shaders/: every file parses and validates with naga (no GPU needed), every
//! file is registered, entry points are named after their op, every WGSL `Params` struct has its Rust mirror's field
//! names, offsets and size, and the subgroup files need (and only they need) the subgroup capability.

use fluke::gpu::ShaderFile;
use fluke::ops::OPS;

fn files() -> Vec<(&'static str, ShaderFile)> {
    OPS.iter().flat_map(|o| o.shaders.iter().map(move |s| (o.name, *s))).collect()
}

#[test]
fn every_shader_parses_and_validates() {
    assert!(files().len() >= OPS.len());
    for (_, sf) in files() {
        fluke::gpu::parse_shader(sf.file, sf.source).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Field for field: a Rust mirror whose fields are in another order, or that misses one, fails here (a size check
/// alone would pass a swapped pair). `_pad*` fields on either side are padding and only count toward the size.
#[test]
fn every_params_struct_matches_its_rust_mirror() {
    for op in OPS {
        for sf in op.shaders {
            let (module, _) = fluke::gpu::parse_shader(sf.file, sf.source).unwrap();
            let wgsl = module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params"));
            let Some((_, ty)) = wgsl else { continue };
            let naga::TypeInner::Struct { span, ref members } = ty.inner else { panic!("{}: Params is not a struct", sf.file) };
            assert_eq!(span as usize, op.params_size, "{}: WGSL Params is {span} bytes, the Rust mirror {}", sf.file, op.params_size);
            let wgsl_fields: Vec<(String, usize)> = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .filter(|(n, _)| !n.starts_with('_'))
                .collect();
            let rust_fields: Vec<(String, usize)> =
                op.params_fields.iter().filter(|(n, _)| !n.starts_with('_')).map(|&(n, o)| (n.to_string(), o)).collect();
            assert_eq!(
                wgsl_fields, rust_fields,
                "{}: WGSL Params fields (name, offset) differ from src/ops/{}.rs's Params",
                sf.file, op.name
            );
        }
    }
}

#[test]
fn entry_points_are_named_after_their_op() {
    // One op, one name: entry points in shaders/<op>*.wgsl start with "<op>_".
    for (op, sf) in files() {
        let (module, _) = fluke::gpu::parse_shader(sf.file, sf.source).unwrap();
        assert!(sf.file.starts_with(op), "{}: registered under op {op}, but not named after it", sf.file);
        for ep in &module.entry_points {
            assert!(ep.name.starts_with(&format!("{op}_")), "{}: entry point {} should start with {op}_", sf.file, ep.name);
        }
    }
}

/// Every file in shaders/ is compiled by the runtime: registered in a row of `ops::OPS` (a file nobody registers is
/// never validated, never run, and rots).
#[test]
fn every_file_in_the_shaders_folder_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = files().iter().map(|(_, s)| s.file.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered, "shaders/ and the files in ops::OPS differ");
    // And each registered source ends with the file's current text (a subgroup file may be registered appended to a
    // prelude of its op's).
    for (_, sf) in files() {
        assert!(sf.source.ends_with(&std::fs::read_to_string(dir.join(sf.file)).unwrap()), "{}: registered source is stale", sf.file);
    }
}

/// The portable shaders validate WITHOUT the subgroup capability (so a device without subgroups can run them), and
/// each subgroup shader validates, as registered, with it and not without it, on the CPU.
#[test]
fn portable_shaders_need_no_subgroups_and_the_subgroup_shaders_validate() {
    use naga::valid::{Capabilities, ValidationFlags, Validator};
    for (_, sf) in files() {
        let (file, src) = (sf.file, sf.source);
        let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
        let without = Validator::new(ValidationFlags::all(), Capabilities::empty()).validate(&module);
        if !sf.subgroups {
            without.unwrap_or_else(|e| panic!("{file} needs a capability (subgroups?) to validate: {}", e.emit_to_string(src)));
            continue;
        }
        Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(src)));
        // Without the capability it must be rejected: the file really is a subgroup variant set.
        assert!(without.is_err(), "{file} validates without subgroups: it should not be marked `subgroups`");
    }
}
