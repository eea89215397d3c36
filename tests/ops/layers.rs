//! The import graph of src/ (from `crate::` paths: `use crate::x::...`, `use crate::{x, y::z}` and inline
//! `crate::x::f()`), checked against the layers the README's reading order describes: no module imports one from a
//! higher layer, and no two modules import each other (directly or round a loop). The one allowed arrow up is the
//! tape's fan-in, summed with `ops::add` (graph -> ops).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Low to high. A module may use modules of its own layer (if that makes no loop) and of lower ones.
const LAYERS: &[&[&str]] = &[
    &["platform"],
    &["gpu", "fsutil", "check"],
    &["tensor"],
    &["graph"],
    &["ops"],
    &["optim"],
    &["model", "data", "postprocess", "plot"],
    &["validate", "evaluate", "args"],
    &["train", "predict", "network_check", "bench", "info", "demo", "testing"],
    // web: src/web/, the browser page's crate (over the library as `fluke::`, like main).
    &["lib", "main", "web"],
];

/// Arrows up a layer that the design allows, with the reason.
const ALLOWED_UP: &[(&str, &str)] = &[("graph", "ops")]; // the tape sums fan-in gradients with ops::add

fn layer(m: &str) -> usize {
    LAYERS.iter().position(|l| l.contains(&m)).unwrap_or_else(|| {
        panic!("src/{m}: a module in no layer of tests/ops/layers.rs: add it to LAYERS (and to the README's reading order)")
    })
}

/// The top-level module a file belongs to: src/ops/conv2d.rs -> ops, src/lib.rs -> lib.
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source file names through `crate::`.
fn imports(src: &str, items_at_root: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // use crate::{a, b::c, d::{e, f}}: the first path segment of each top-level item.
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(item.trim().split("::").next().unwrap().trim().to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(ch);
                }
            }
            out.insert(item.trim().split("::").next().unwrap().trim().to_string());
        } else {
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
        rest = after;
    }
    out.retain(|m| !m.is_empty());
    // Items of lib.rs: its own functions belong to the root layer, its re-exports to the module they come from.
    out.into_iter().map(|m| items_at_root.get(&m).cloned().unwrap_or(m)).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mods: BTreeSet<String> = files.iter().map(|f| module_of(f.strip_prefix(&src).unwrap())).collect();
    // What `crate::X` can name besides a module: lib.rs's own items (functions: the root layer) and its `pub use`
    // re-exports (`pub use gpu::{Gpu, GpuOptions}`: `crate::Gpu` is a use of gpu).
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut root_items = BTreeMap::new();
    for line in lib.lines() {
        let l = line.trim();
        for kw in ["pub fn ", "fn ", "pub const ", "pub struct "] {
            if let Some(r) = l.strip_prefix(kw) {
                let name: String = r.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                root_items.insert(name, "lib".to_string());
            }
        }
        if let Some(r) = l.strip_prefix("pub use ") {
            let r = r.trim_end_matches(';');
            let (module, names) = r.split_once("::").unwrap_or((r, r));
            for n in names.trim_matches(|c| c == '{' || c == '}').split(',') {
                let n = n.trim().rsplit(" as ").next().unwrap().trim().rsplit("::").next().unwrap();
                if !mods.contains(n) {
                    root_items.insert(n.to_string(), module.to_string());
                }
            }
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let m = module_of(f.strip_prefix(&src).unwrap());
        let text = std::fs::read_to_string(f).unwrap();
        let deps = imports(&text, &root_items);
        let entry = g.entry(m.clone()).or_default();
        entry.extend(deps.into_iter().filter(|d| *d != m));
    }
    g
}

#[test]
fn no_module_imports_a_higher_layer() {
    let g = graph();
    let mut bad = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if layer(d) > layer(m) && !ALLOWED_UP.contains(&(m.as_str(), d.as_str())) {
                bad.push(format!("{m} (layer {}) -> {d} (layer {})", layer(m), layer(d)));
            }
        }
    }
    assert!(bad.is_empty(), "imports up a layer:\n  {}", bad.join("\n  "));
}

#[test]
fn the_import_graph_has_no_loops() {
    let g = graph();
    // Depth-first search for a back edge, ignoring the allowed arrows up.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            return Some(format!("{} -> {m}", path[i..].join(" -> ")));
        }
        if done.contains(m) {
            return None;
        }
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            if ALLOWED_UP.contains(&(m, d.as_str())) {
                continue;
            }
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m);
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("import loop: {cycle}");
        }
    }
}

#[test]
fn the_import_reader_sees_grouped_and_inline_paths() {
    let none = BTreeMap::new();
    let got = imports("use crate::{a::B, c, d::{e, f}};\nfn g() { crate::h::i(); }", &none);
    assert_eq!(got, ["a", "c", "d", "h"].iter().map(|s| s.to_string()).collect());
}
