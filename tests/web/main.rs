//! The browser page (src/web/) in headless Chromium on SwiftShader's WebGPU: built with tools/build-web.sh, served
//! from 127.0.0.1, driven by its automation hook (`index.html?model=URL&photo=URL&report=URL`), and its mask
//! compared with `fluke predict`'s on the same synthetic photo and the same small model; the page's first-use kernel
//! check is asserted to have run, and to stop the page when a kernel is wrong (the hook's test fault). Two refusals
//! are driven for real: a file that is not a model, and a model too large for the device's limits (the hook asks
//! WebGPU for a device with a 128 MiB storage binding limit, `limit_binding_mib=128`, and runs the model at a size
//! that needs more, `size=`), whose message must name the limit and the largest size that fits.
//!
//! Chromium cannot be asked when a page's GPU promises have finished (`--dump-dom` does not wait for them), so the
//! page reports: with `&report=/report` it POSTs its result JSON and mask to this test's server, which holds the
//! test until that request arrives.
//!
//! Needs chromium, wasm-bindgen-cli at Cargo.lock's version and the wasm32 target. Without them the tests say so
//! and pass, unless FLUKE_WEB_REQUIRED=1 (CI, .ci/run, which installs them), where a missing tool fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_fluke");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Model size and width divisor of the test model: small, so SwiftShader runs the page in seconds.
const SIZE: &str = "64x32";
const WIDTH: &str = "8";
/// Longest wait for the page's report (building the pipelines on SwiftShader is most of it).
const PAGE_TIMEOUT: Duration = Duration::from_secs(420);

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// The chromium binary, or None (after saying why) when the tools the page needs are missing locally.
fn tools() -> Option<String> {
    let required = std::env::var("FLUKE_WEB_REQUIRED").is_ok_and(|v| v == "1");
    let chromium = ["chromium", "chromium-browser", "chromium-headless-shell"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()));
    let want = run(Command::new("bash").args([&format!("{ROOT}/tools/build-web.sh"), "--wasm-bindgen-version"]), "build-web.sh");
    let have = Command::new("wasm-bindgen").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    let missing = match (&chromium, have.split_whitespace().nth(1) == Some(want.trim())) {
        (None, _) => Some("chromium (apt-get install chromium)".to_string()),
        (_, false) => Some(format!("wasm-bindgen {} (cargo install wasm-bindgen-cli --version {})", want.trim(), want.trim())),
        _ => None,
    };
    if let Some(m) = missing {
        assert!(!required, "web test: FLUKE_WEB_REQUIRED=1 but {m} is missing");
        // Written to stderr directly: libtest hides a passing test's eprintln!, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "web test skipped: {m} is missing; .ci/run installs it");
        return None;
    }
    chromium.map(str::to_string)
}

/// The built page with a small model and a synthetic photo beside it (built once per test binary).
struct Site {
    dir: PathBuf,
    /// `fluke predict`'s outputs for `photo`.
    native: PathBuf,
    photo: &'static str,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("fluke-web-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("site");
        run(Command::new("bash").arg(format!("{ROOT}/tools/build-web.sh")).arg(&dir), "tools/build-web.sh");
        let synth = base.join("synth");
        run(Command::new(BIN).args(["synth", "--count", "12", "--out"]).arg(&synth), "fluke synth");
        let runs = base.join("run");
        run(
            Command::new(BIN)
                .args(["train", "--size", SIZE, "--width", WIDTH, "--batch", "4", "--epochs", "3", "--images"])
                .arg(synth.join("images"))
                .arg("--masks")
                .arg(synth.join("masks"))
                .arg("--out")
                .arg(&runs),
            "fluke train",
        );
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(runs.join("best.safetensors"), data.join("model.safetensors")).unwrap();
        // A PNG photo of odd size (405x240), so the mask goes through the resize to the photo's size.
        let photo = "fluke_0000.png";
        std::fs::copy(synth.join("images").join(photo), data.join(photo)).unwrap();
        let native = base.join("native");
        run(
            Command::new(BIN).args(["predict", "--tta", "flip,blur", "--weights"]).arg(data.join("model.safetensors")).arg("--input").arg(data.join(photo)).arg("--out").arg(&native),
            "fluke predict",
        );
        Site { dir, native, photo }
    })
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Answer one HTTP request: a file under `dir`, or the page's POST to /report (sent on `tx`).
fn serve(mut s: TcpStream, dir: &Path, tx: &mpsc::Sender<String>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let reply = |s: &mut TcpStream, status: &str, ctype: &str, body: &[u8]| {
        let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    };
    if method == "POST" && path == "/report" {
        let mut body = vec![0; len];
        let _ = r.read_exact(&mut body);
        reply(&mut s, "200 OK", "text/plain", b"ok");
        let _ = tx.send(String::from_utf8_lossy(&body).to_string());
        return;
    }
    let rel = path.trim_start_matches('/');
    let file = dir.join(if rel.is_empty() { "index.html" } else { rel });
    match (rel.contains(".."), std::fs::read(&file)) {
        (false, Ok(b)) => reply(&mut s, "200 OK", content_type(&file), &b),
        _ => reply(&mut s, "404 Not Found", "text/plain", b"not found"),
    }
}

/// Open `index.html?QUERY&report=/report` in headless Chromium and return the page's report (JSON).
fn run_page(chromium: &str, query: &str) -> serde_json::Value {
    let dir = site().dir.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let (dir, tx) = (dir.clone(), tx.clone());
            std::thread::spawn(move || serve(s, &dir, &tx));
        }
    });
    let profile = site().dir.parent().unwrap().join(format!("chromium-{port}"));
    let url = format!("http://127.0.0.1:{port}/index.html?{query}&report=/report");
    let mut cmd = Command::new(chromium);
    cmd.args(["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-gpu-watchdog", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group, so the browser and every helper process it started go together at the end.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("cannot start chromium");
    let got = rx.recv_timeout(PAGE_TIMEOUT);
    #[cfg(unix)]
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    let body = got.unwrap_or_else(|_| panic!("the page sent no report within {PAGE_TIMEOUT:?}: {url}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("the page's report is not JSON ({e}): {body}"))
}

/// Decode standard base64 (the mask's data URL).
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("base64: bad character {c}"),
    };
    let mut out = Vec::new();
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| val(c) as u32).collect();
        let n = v.iter().enumerate().fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn page_mask_matches_fluke_predict() {
    let Some(chromium) = tools() else { return };
    let s = site();
    let report = run_page(&chromium, &format!("model=data/model.safetensors&photo=data/{}", s.photo));
    assert_eq!(report["title"], "fluke:done", "the page failed: {report}");
    let r = &report["result"];
    eprintln!("web test: page result {r}");
    let data_url = report["mask"].as_str().expect("no mask in the report");
    let png = base64(data_url.strip_prefix("data:image/png;base64,").expect("mask is not a PNG data URL"));
    let page = image::load_from_memory(&png).expect("the page's mask is not a PNG").to_luma8();
    let stem = s.photo.trim_end_matches(".png");
    let native = image::open(s.native.join(format!("{stem}_mask.png"))).unwrap().to_luma8();
    assert_eq!(page.dimensions(), native.dimensions(), "the page's mask is not at the photo's size");
    let n = native.len();
    let fluke = native.pixels().filter(|p| p[0] > 0).count();
    // Not a vacuous comparison: the model finds a fluke that does not fill the photo.
    assert!(fluke > n / 100 && fluke < n * 99 / 100, "native mask has {fluke} of {n} pixels: the test model is degenerate");
    let differ = page.pixels().zip(native.pixels()).filter(|(a, b)| a[0] != b[0]).count();
    eprintln!("web test: {differ} of {n} mask pixels differ from fluke predict's (lavapipe); {fluke} fluke pixels");
    // SwiftShader (through Chrome's Tint) and lavapipe sum the same products in different orders, so probabilities
    // differ in the last bits and a pixel whose probability sits within ~1e-5 of the 0.5 threshold may flip: allow
    // one pixel in a thousand, far below what a wrong kernel or a wrong resize gives (thousands of pixels).
    assert!(differ * 1000 <= n, "{differ} of {n} mask pixels differ between the page and fluke predict");
    assert_eq!(r["width"], 405);
    assert_eq!(r["model_size"], serde_json::json!([64, 32]));
    // The page's numbers are the mask it sent.
    let page_fluke = page.pixels().filter(|p| p[0] > 0).count();
    let frac = r["fluke_fraction"].as_f64().unwrap();
    assert!((frac - page_fluke as f64 / n as f64).abs() < 1e-9, "fluke_fraction {frac} is not the sent mask's");
    assert!(r["components"].as_u64().unwrap() >= 1 && r["bbox"].is_array(), "no components or bbox: {r}");
    assert!(r["adapter"].is_string(), "no adapter in {r}");
    // The first-use kernel check ran on the page's adapter before the photo: every convolution geometry of the
    // model at its size, none replaced (SwiftShader runs the portable kernels, which are right there).
    let kc = &r["kernel_check"];
    eprintln!("web test: kernel check {kc}");
    assert!(kc["checked"].as_u64().is_some_and(|c| c >= 10), "the page's kernel check did not run: {r}");
    assert_eq!(kc["replaced"], serde_json::json!([]), "a kernel was replaced on SwiftShader: {kc}");
    // It names the kernels that computed the checked results: the convolutions' own entry points.
    let kernels = kc["kernels"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(!kernels.is_empty() && kernels.iter().all(|k| k.as_str().is_some_and(|k| k.starts_with("conv2d_"))), "{kc}");
}

/// The page's kernel check is wired to its verdict: with the automation hook's test fault on an entry point every
/// weight gradient runs (`conv2d_backward_reduce`, a portable kernel with no twin to fall back on), the check fails
/// and the page stops with the native check's message instead of predicting.
#[test]
fn page_kernel_check_stops_on_a_wrong_kernel() {
    let Some(chromium) = tools() else { return };
    let photo = site().photo;
    let query = format!("model=data/model.safetensors&photo=data/{photo}&kernel_fault=conv2d_backward_reduce");
    let title = page_error(&chromium, &query, "fluke:error: kernel check: ");
    assert!(title.contains("conv2d_backward_reduce") && title.contains("no other twin"), "the error does not name the kernel: {title}");
}

#[test]
fn page_names_a_file_that_is_not_a_model() {
    let Some(chromium) = tools() else { return };
    let photo = site().photo;
    let title = page_error(&chromium, &format!("model=data/{photo}&photo=data/{photo}"), "fluke:error: ");
    assert!(title.contains(photo) && title.contains("safetensors"), "the error does not name the file and the fix: {title}");
}

/// A model the device's limits cannot hold, for real: the page asks WebGPU for a device whose storage binding limit is
/// 128 MiB (`limit_binding_mib=128`: WebGPU's default, so every adapter can grant it) and runs the test model at
/// 8192x4096 (`size=`), where its largest tensor needs hundreds of MiB per image. `check_fits` refuses it against
/// the device's granted limits and the page names the limit and the largest size of that shape that fits.
#[test]
fn page_names_the_size_that_fits_when_the_limits_are_too_small() {
    let Some(chromium) = tools() else { return };
    let photo = site().photo;
    let query = format!("model=data/model.safetensors&photo=data/{photo}&size=8192x4096&limit_binding_mib=128");
    let title = page_error(&chromium, &query, "fluke:error: model.safetensors: this GPU cannot run the model at 8192x4096: ");
    eprintln!("web test: {title}");
    assert!(title.contains("storage binding limit of 128 MiB"), "the error does not name the device's limit: {title}");
    let after = |pat: &str| title.split(pat).nth(1).unwrap_or_else(|| panic!("no '{pat}' in: {title}"));
    // "needs the tensor '...' of N MiB per image": the need at 8192x4096.
    let need: u64 = title.split(" MiB per image").next().and_then(|t| t.rsplit(' ').next()?.parse().ok()).unwrap_or_else(|| panic!("no need in MiB: {title}"));
    // The fix: the largest smaller size of the same shape (2:1, the height rounded down to a multiple of 32) that fits.
    // Every tensor grows with the area (the sizes are multiples of 32), so the need at W x H is need * W*H / (8192*4096).
    let named = after("the largest size of this shape that fits this GPU is ").split(':').next().unwrap_or_default();
    let (fw, fh) = named.split_once('x').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))).unwrap_or_else(|| panic!("no WxH named: {title}"));
    assert!(fh == fw / 2 / 32 * 32 && fw % 32 == 0 && fw < 8192, "{fw}x{fh} is not a smaller size of the same shape");
    let fits = |w: u64, h: u64| need * w * h <= 128 * 8192 * 4096;
    assert!(fits(fw, fh) && !fits(fw + 32, (fw + 32) / 2 / 32 * 32), "{fw}x{fh} is not the largest size that fits 128 MiB ({need} MiB at 8192x4096)");
    assert!(title.contains(&format!("fluke train --size {fw}x{fh}")), "the fix is not named: {title}");
}

/// Run the page on `query`, which must fail: its title, asserted to start with `prefix`.
fn page_error(chromium: &str, query: &str, prefix: &str) -> String {
    let report = run_page(chromium, query);
    let title = report["title"].as_str().unwrap_or_default().to_string();
    assert!(title.starts_with(prefix), "the page did not stop with '{prefix}...': {report}");
    title
}
