//! Every shader in shaders/ compiles with Tint, Chrome's WGSL compiler, which (unlike naga, which fluke uses) runs
//! WGSL's uniformity analysis: a barrier or subgroup builtin reached from non-uniform control flow is an error there
//! (and undefined behaviour anywhere).
//!
//! How: the test serves a page and the shader sources on 127.0.0.1 and runs headless Chromium (WebGPU on
//! SwiftShader, no GPU needed) on it. The page calls `createShaderModule` + `getCompilationInfo` for each module (no
//! pipelines: SwiftShader takes minutes on the large kernels, and Tint parses, validates and checks uniformity at
//! module creation) and POSTs every message back. Any `error` fails the test; warnings are printed.
//!
//! Modules: every registered shader source as fluke hands it to the device (`fluke::ops::OPS`: a file alone, or a
//! fast conv2d file after conv2d_prelude.wgsl), the portable ones on a device without optional features (as fluke
//! compiles them on any device), the subgroup ones with `enable subgroups;` in front (Tint needs it, naga rejects it)
//! on a device with the `subgroups` feature. Tint stops at a module's first subgroup-uniformity error, so each
//! subgroup module is compiled a second time under `diagnostic(warning, subgroup_uniformity);`, where Tint warns once
//! per function: those warnings count as errors too, and list every function at fault. If the adapter lacks `subgroups`, the test says so loudly,
//! checks every other file, and accepts only errors about subgroups from the subgroup modules (Tint stops at the
//! `enable`, so that is all it can tell); FLUKE_TINT_NO_SUBGROUPS=1 takes that path on any adapter.
//!
//! Needs Chromium (`apt-get install -y chromium`; another binary via FLUKE_CHROMIUM=path). It fails, never skips,
//! when Chromium is missing or WebGPU does not come up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fluke::gpu::ShaderFile;

/// Flags that give headless Chromium WebGPU on SwiftShader here: `--no-sandbox` because CI runs as root.
const CHROMIUM_FLAGS: &[&str] = &["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu"];
const TIMEOUT: Duration = Duration::from_secs(120);
const SUBGROUP_ENABLE: &str = "enable subgroups;\n";
const SUBGROUP_RELAX: &str = "diagnostic(warning, subgroup_uniformity);\n";
const RELAXED_TAG: &str = "an error, reported as a warning by";
/// Tint's subgroup-uniformity diagnostic (an error by default, a warning under SUBGROUP_RELAX).
const SUBGROUP_UNIFORMITY: &str = "must only be called from subgroup uniform control flow";

const PAGE: &str = r#"<!doctype html>
<html><body><script>
const post = (r) => fetch('/report', {method: 'POST', body: JSON.stringify(r)});
(async () => {
  const report = {adapter: null, subgroups: false, modules: {}};
  try {
    if (!navigator.gpu) throw new Error('navigator.gpu is undefined (WebGPU disabled in this browser)');
    const modules = await (await fetch('/modules.json')).json();
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('requestAdapter() returned null (no WebGPU adapter)');
    const i = adapter.info;
    report.adapter = {vendor: i.vendor, architecture: i.architecture, description: i.description, device: i.device,
                      subgroupMinSize: i.subgroupMinSize ?? null, subgroupMaxSize: i.subgroupMaxSize ?? null,
                      features: [...adapter.features].sort()};
    report.adapterSubgroups = adapter.features.has('subgroups');
    // ?nosubgroups (FLUKE_TINT_NO_SUBGROUPS=1): act as if the adapter lacked the feature, to test that path.
    report.subgroups = report.adapterSubgroups && !location.search.includes('nosubgroups');
    const plain = await adapter.requestDevice();
    // A second adapter: a WebGPU adapter hands out one device.
    const sgAdapter = report.subgroups ? await navigator.gpu.requestAdapter() : null;
    const sg = sgAdapter ? await sgAdapter.requestDevice({requiredFeatures: ['subgroups']}) : null;
    for (const m of modules) {
      const device = m.subgroups && sg ? sg : plain;
      device.pushErrorScope('validation');
      const module = device.createShaderModule({label: m.name, code: m.code});
      const info = await module.getCompilationInfo();
      const scope = await device.popErrorScope();
      report.modules[m.name] = {
        subgroupDevice: device === sg,
        messages: info.messages.map(x => ({type: x.type, line: x.lineNum, column: x.linePos, message: x.message})),
        validationError: scope ? scope.message : null,
      };
    }
  } catch (e) {
    report.fatal = String(e && e.stack || e);
  }
  await post(report);
})().catch(e => post({fatal: 'page: ' + String(e)}));
</script></body></html>
"#;

/// One module the page compiles, and where each of its source files starts in it.
struct Module {
    name: String,
    code: String,
    /// Compiled on the device with the `subgroups` feature.
    subgroups: bool,
    /// Has `diagnostic(warning, subgroup_uniformity);`: Tint stops at the first subgroup-uniformity error of a module
    /// but warns once per function, so this copy lists every function that has one (its warnings count as errors).
    relaxed: bool,
    /// (file, 1-based module line of the file's first line, file source)
    parts: Vec<(String, usize, String)>,
}

impl Module {
    /// Module line -> (file, file line, enclosing fn); None for a line before every file (the directives).
    fn locate(&self, line: usize) -> Option<(&str, usize, Option<String>)> {
        let (file, start, src) = self.parts.iter().rev().find(|(_, start, _)| line >= *start)?;
        let file_line = line - start + 1;
        Some((file, file_line, enclosing_fn(src, file_line)))
    }

    fn place(&self, line: usize, column: u64) -> String {
        match self.locate(line) {
            Some((file, l, Some(f))) => format!("{file}:{l}:{column} (in fn {f})"),
            Some((file, l, None)) => format!("{file}:{l}:{column}"),
            None => format!("{}: module line {line}:{column}", self.name),
        }
    }
}

/// The function a line is in: the last `fn name(` at the start of a line at or above it, with " (entry point)" when
/// the attributes right above it say @compute.
fn enclosing_fn(src: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    for i in (0..line.min(lines.len())).rev() {
        let Some(rest) = lines[i].strip_prefix("fn ") else { continue };
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let entry = lines[..i].iter().rev().take_while(|l| l.starts_with('@')).any(|l| l.contains("@compute"));
        return Some(if entry { format!("{name} (entry point)") } else { name });
    }
    None
}

/// The modules fluke compiles, from the op registry (`fluke::ops::OPS`): each registered source as it is handed to
/// the device (a fast conv2d file after its prelude), and each subgroup file also with Tint's `enable` in front and a
/// second time relaxed (see `Module::relaxed`). Every file in shaders/ is registered (tests/ops/shaders.rs), so this is
/// every shader.
fn modules() -> Vec<Module> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("shaders/{name}: {e}"));
    let registered: Vec<ShaderFile> = fluke::ops::OPS.iter().flat_map(|o| o.shaders.iter().copied()).collect();
    assert!(registered.len() > 1, "expected the registered WGSL shaders");
    let mut out = Vec::new();
    for sf in &registered {
        // The source is [prelude] + the file: name the prelude by the registered file whose text it is.
        let text = read(sf.file);
        let prefix = sf.source.strip_suffix(text.as_str()).unwrap_or_else(|| panic!("{}: registered source is stale", sf.file));
        let mut files: Vec<(String, String)> = Vec::new();
        if !prefix.is_empty() {
            let prelude = registered
                .iter()
                .find(|p| p.source == prefix)
                .unwrap_or_else(|| panic!("{}: compiled after text that is no registered file", sf.file));
            files.push((prelude.file.to_string(), prefix.to_string()));
        }
        files.push((sf.file.to_string(), text));
        let name = files.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(" + ");
        let heads: Vec<(String, bool)> = if sf.subgroups {
            vec![(SUBGROUP_ENABLE.to_string(), false), (format!("{SUBGROUP_ENABLE}{SUBGROUP_RELAX}"), true)]
        } else {
            vec![(String::new(), false)]
        };
        for (head, relaxed) in heads {
            let mut parts = Vec::new();
            let mut line = 1 + head.matches('\n').count();
            for (f, src) in &files {
                parts.push((f.clone(), line, src.clone()));
                line += src.matches('\n').count();
            }
            let suffix = if relaxed { ", subgroup_uniformity as warning" } else { "" };
            let code = format!("{head}{}", sf.source);
            out.push(Module { name: format!("{name}{suffix}"), code, subgroups: sf.subgroups, relaxed, parts });
        }
    }
    out
}

/// Serves GET / (the page), GET /modules.json, and POST /report (sent on `tx`), one thread per connection (Chromium
/// opens speculative connections that may never send a request).
fn serve(listener: TcpListener, modules_json: String, tx: mpsc::Sender<String>) {
    let modules_json = std::sync::Arc::new(modules_json);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (json, tx) = (modules_json.clone(), tx.clone());
        std::thread::spawn(move || {
            let _ = handle(stream, &json, &tx);
        });
    }
}

fn handle(mut stream: TcpStream, modules_json: &str, tx: &mpsc::Sender<String>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body): (&str, &str, &[u8]) = match (method, path) {
        ("GET", "/") | ("GET", "/index.html") => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes()),
        ("GET", "/modules.json") => ("200 OK", "application/json", modules_json.as_bytes()),
        ("POST", "/report") => {
            let mut body = vec![0u8; content_length];
            reader.read_exact(&mut body)?;
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            ("200 OK", "text/plain", b"ok")
        }
        _ => ("404 Not Found", "text/plain", b"not found"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// Ends Chromium and its helper processes (it runs in its own process group): SIGTERM, then SIGKILL.
fn stop(child: &mut Child) {
    let pgid = child.id() as i32;
    #[cfg(unix)]
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    #[cfg(unix)]
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn every_shader_compiles_with_tint() {
    let started = Instant::now();
    let modules = modules();
    let json = serde_json::Value::Array(
        modules.iter().map(|m| serde_json::json!({"name": m.name, "code": m.code, "subgroups": m.subgroups})).collect(),
    )
    .to_string();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let force_no_subgroups = std::env::var_os("FLUKE_TINT_NO_SUBGROUPS").is_some();
    let url = format!(
        "http://127.0.0.1:{}/{}",
        listener.local_addr().unwrap().port(),
        if force_no_subgroups { "?nosubgroups" } else { "" }
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || serve(listener, json, tx));

    let profile = tempfile::tempdir().expect("temporary --user-data-dir");
    let log_path = profile.path().join("chromium.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let chromium = std::env::var("FLUKE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut cmd = Command::new(&chromium);
    cmd.args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{chromium}` not found: this test needs Chromium for Tint (WebGPU's WGSL compiler). Fix: \
             `apt-get install -y chromium` (or set FLUKE_CHROMIUM to a Chromium binary)"
        ),
        Err(e) => panic!("cannot start `{chromium}`: {e}"),
    };

    // Wait for the report, or Chromium's exit, or the timeout.
    let deadline = Instant::now() + TIMEOUT;
    let report = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(r) => break Ok(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err("the local server stopped".to_string()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("`{chromium}` exited ({status}) before the page reported"));
        }
        if Instant::now() > deadline {
            break Err(format!("no report from the page within {TIMEOUT:?}"));
        }
    };
    stop(&mut child);
    let report = report.unwrap_or_else(|e| {
        panic!("{e}. Flags: {CHROMIUM_FLAGS:?}. Last lines of Chromium's output:\n{}", tail(&log_path, 30))
    });
    let report: serde_json::Value = serde_json::from_str(&report).expect("the page's report is not JSON");

    if let Some(adapter) = report.get("adapter").filter(|a| !a.is_null()) {
        println!(
            "Tint via {chromium} {CHROMIUM_FLAGS:?}: WebGPU adapter vendor={} architecture={} description={} device={} \
             subgroup sizes {}..{}",
            adapter["vendor"], adapter["architecture"], adapter["description"], adapter["device"],
            adapter["subgroupMinSize"], adapter["subgroupMaxSize"]
        );
        println!("  adapter features: {}", adapter["features"]);
    }
    if let Some(fatal) = report.get("fatal") {
        panic!(
            "the page failed before compiling every shader: {}\nLast lines of Chromium's output:\n{}",
            fatal.as_str().unwrap_or(&fatal.to_string()),
            tail(&log_path, 30)
        );
    }
    let subgroups = report["subgroups"].as_bool().unwrap_or(false);
    if !subgroups {
        let why = if force_no_subgroups {
            "FLUKE_TINT_NO_SUBGROUPS is set"
        } else {
            "the WebGPU adapter in headless Chromium does not offer `subgroups`"
        };
        println!(
            "\n!!!!!!!! WARNING: {why}: the subgroup shaders are NOT checked by Tint (only that their modules fail for \
             want of the subgroups feature alone) !!!!!!!!\n"
        );
    }

    let mut errors: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut warnings = 0;
    for m in &modules {
        let r =
            report["modules"].get(&m.name).unwrap_or_else(|| panic!("{}: the page reported nothing for it", m.name));
        let messages = r["messages"].as_array().cloned().unwrap_or_default();
        // Each error or warning, with the notes (type info) that follow it, as Tint sends them.
        let mut diags: Vec<(String, String, String)> = Vec::new(); // (kind, "place: message" + notes, message)
        for msg in &messages {
            let kind = msg["type"].as_str().unwrap_or("?").to_string();
            let line = msg["line"].as_u64().unwrap_or(0) as usize;
            let text = msg["message"].as_str().unwrap_or("").to_string();
            let located = format!("{}: {text}", m.place(line, msg["column"].as_u64().unwrap_or(0)));
            match diags.last_mut() {
                Some(last) if kind == "info" => last.1.push_str(&format!("\n      note: {located}")),
                _ => diags.push((kind, located, text)),
            }
        }
        if !diags.iter().any(|d| d.0 == "error") {
            if let Some(v) = r["validationError"].as_str() {
                diags.push((
                    "error".into(),
                    format!("{}: validation error without a compilation message: {v}", m.name),
                    v.into(),
                ));
            }
        }
        let mut module_errors = Vec::new();
        for (kind, located, text) in diags {
            let is_error = kind == "error" || (m.relaxed && kind == "warning" && text.contains(SUBGROUP_UNIFORMITY));
            if is_error {
                let located = if kind == "warning" {
                    // First line stays Tint's place and message (the key that merges it with the strict module's).
                    let (first, notes) = located.split_once('\n').unwrap_or((&located, ""));
                    let sep = if notes.is_empty() { "" } else { "\n" };
                    format!("{first} [{RELAXED_TAG} {}]{sep}{notes}", SUBGROUP_RELAX.trim())
                } else {
                    located
                };
                module_errors.push((located, text));
            } else {
                warnings += (kind == "warning") as usize;
                println!("Tint {kind}: {located}");
            }
        }
        if m.subgroups && !subgroups {
            // Expected to fail without the feature; an error not about subgroups is still an error.
            let (about, other): (Vec<_>, Vec<_>) =
                module_errors.into_iter().partition(|(_, t)| t.to_lowercase().contains("subgroup"));
            println!(
                "{}: compiled WITHOUT the subgroups feature: {} error(s) about subgroups (expected), {} other",
                m.name,
                about.len(),
                other.len()
            );
            for (e, _) in &about {
                println!("  (expected) error: {e}");
            }
            module_errors = other;
        } else {
            let device = if r["subgroupDevice"].as_bool() == Some(true) {
                "device with subgroups"
            } else {
                "device without optional features"
            };
            println!("{} ({device}): {} error(s), {} message(s) in all", m.name, module_errors.len(), messages.len());
        }
        for (e, _) in module_errors {
            // The same place from the strict and the relaxed subgroup module: once.
            let key = e.lines().next().unwrap_or("").split(&format!(" [{RELAXED_TAG}")[..]).next().unwrap().to_string();
            println!("Tint error: {e}");
            if seen.insert(key) {
                errors.push(e);
            }
        }
    }
    println!(
        "Tint check: {} module(s), {} error(s), {warnings} warning(s), {:.1?}",
        modules.len(),
        errors.len(),
        started.elapsed()
    );
    assert!(errors.is_empty(), "Tint rejects {} place(s) in shaders/:\n{}", errors.len(), errors.join("\n"));
}
