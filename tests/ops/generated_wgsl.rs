//! The generated shaders are what their generator writes: tools/gen_conv2d.rs regenerates shaders/conv2d_tiled.wgsl,
//! conv2d_vec4.wgsl and conv2d_subgroup.wgsl, and this test fails when a committed file differs (someone edited the
//! output, or the generator without regenerating). `FLUKE_REGENERATE=1 cargo test --test generated_wgsl` writes the
//! files instead.

#[path = "../../tools/gen_conv2d.rs"]
mod gen;

#[test]
fn generated_shaders_are_fresh() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var("FLUKE_REGENERATE").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut stale = Vec::new();
    for (path, text) in gen::files() {
        assert!(text.starts_with(gen::HEADER), "{path}: generated text must start with the do-not-edit header");
        let file = root.join(path);
        if regenerate {
            std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            println!("wrote {path}");
            continue;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed != text {
            let line = committed.lines().zip(text.lines()).position(|(a, b)| a != b).map_or(committed.lines().count().min(text.lines().count()), |i| i);
            stale.push(format!("{path} (first difference at line {})", line + 1));
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated shaders: {}. Edit tools/gen_conv2d.rs, not its output, then run \
         `FLUKE_REGENERATE=1 cargo test --test generated_wgsl`",
        stale.join(", ")
    );
}

/// Each generated file parses and validates on its own terms, as the registry compiles it (after the prelude).
#[test]
fn generated_shaders_validate_after_the_prelude() {
    let prelude = include_str!("../../shaders/conv2d_prelude.wgsl");
    for (path, text) in gen::files() {
        let src = format!("{prelude}{text}");
        fluke::gpu::parse_shader(path, &src).unwrap_or_else(|e| panic!("{e}"));
    }
}
