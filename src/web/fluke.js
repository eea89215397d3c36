// The page around fluke_web.wasm (src/web/lib.rs): pick or drop a model and photos, run them, show and offer the
// results. With ?model=URL&photo=URL[&photo=URL...][&tta=flip,blur][&report=URL] it runs without clicks and, when
// finished, sets document.title to "fluke:done" (or "fluke:error: <message>"), fills <pre id="fluke-result"> with
// JSON and <img id="fluke-mask"> with the first photo's mask as a PNG data URL; `report` (same origin) also gets
// that JSON and the mask data URL as a POST, for headless tests whose browser cannot be asked when it is done.
// &kernel_fault=ENTRY (tests only) makes the kernel check treat that entry point's results as wrong. &size=WxH runs
// the model at that size instead of the checkpoint's (fluke predict --size); &limit_binding_mib=N asks WebGPU for a
// device whose storage binding limit is at most N MiB (WebGPU grants at least its default, 128 MiB), so the page
// meets a smaller adapter's limits for real (its too-small-limits message is tested that way).
import init, { start, last_panic } from './fluke_web.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let engine = null;     // the started Fluke (device + shaders)
let modelInfo = null;  // JSON of the loaded model
let photoFiles = [];   // File objects waiting for a model

// An error's text: a Rust panic arrives as "unreachable"; its message was kept by the panic hook.
function errText(err) {
  let msg = String((err && err.message) || err);
  if (err instanceof WebAssembly.RuntimeError) {
    try { msg = 'fluke crashed: ' + (last_panic() || msg); } catch (_) { /* module not started */ }
  }
  return msg;
}

function status(msg, isError = false) {
  console.log('fluke: ' + msg);
  $('status').textContent = msg;
  $('status').className = isError ? 'error' : '';
}

function progress(done, total) {
  const p = $('progress');
  p.hidden = total === 0;
  p.max = Math.max(total, 1);
  p.value = done;
}

const pngUrl = (bytes) => URL.createObjectURL(new Blob([bytes], { type: 'image/png' }));

function dataUrl(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return 'data:image/png;base64,' + btoa(s);
}

function stemOf(name) {
  const base = name.split('/').pop();
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

// One result card: overlay and crop, and the files fluke predict writes, as downloads.
function showPhoto(name, r, info) {
  const div = document.createElement('div');
  div.className = 'photo';
  const stem = stemOf(name);
  const links = [['mask', r.mask_png()], ['rgba', r.rgba_png()], ['crop', r.crop_png()], ['overlay', r.overlay_png()]]
    .filter(([, b]) => b.length > 0)
    .map(([k, b]) => `<a download="${stem}_${k}.png" href="${pngUrl(b)}">${stem}_${k}.png</a>`).join('');
  const crop = r.crop_png();
  div.innerHTML = `<h3></h3><div><img alt="mask overlay" src="${pngUrl(r.overlay_png())}"></div>
    <div>${crop.length ? `<img alt="crop" src="${pngUrl(crop)}">` : '<p>No pixel reached the crop threshold: no crop.</p>'}</div>
    <div class="links"></div>`;
  div.querySelector('h3').textContent =
    `${name}: ${(info.fluke_fraction * 100).toFixed(1)}% fluke, ${info.components} component(s), ${info.ms.toFixed(0)} ms`;
  div.querySelector('.links').innerHTML = links;
  $('photos').prepend(div);
}

async function ensureEngine() {
  if (engine) return engine;
  if (!navigator.gpu) {
    throw new Error('this browser has no WebGPU (navigator.gpu is missing): use a current Chrome or Edge (113+), ' +
      'Safari 26+, or Firefox 141+ on Windows; on Linux Chrome needs --enable-unsafe-webgpu');
  }
  status('Starting the GPU...');
  // Chrome reports no adapter description to wgpu; vendor and architecture name it (e.g. "google swiftshader").
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU is present but offers no adapter (blocklisted GPU or driver?): try another browser');
  const ai = adapter.info || {};
  const name = [ai.vendor, ai.architecture, ai.device, ai.description].filter((s) => s).join(' ');
  await init();
  const limit = params.get('limit_binding_mib');
  engine = await start(name, limit ? Number(limit) : undefined);
  console.log('fluke: adapter ' + engine.adapter());
  return engine;
}

async function loadModel(bytes, name) {
  const e = await ensureEngine();
  status(`Loading ${name}...`);
  modelInfo = null;
  const info = JSON.parse(e.load_model(bytes, name, params.get('size') || ''));
  // fluke predict's first-use kernel check, on this adapter, before the model touches a photo.
  status(`Checking fluke's kernels on this GPU (once per model size)...`);
  await new Promise((r) => setTimeout(r, 0));
  info.kernel_check = JSON.parse(await e.check_kernels(params.get('kernel_fault') || ''));
  modelInfo = info;
  const a = JSON.parse(e.adapter());
  status(`Model ${name}: ${modelInfo.params.toLocaleString()} parameters, ${modelInfo.size[0]}x${modelInfo.size[1]}, ` +
    `width /${modelInfo.width_div}, on ${a.name || 'the WebGPU adapter'}; kernels checked` +
    (info.kernel_check.replaced.length ? ` (replaced by portable twins: ${info.kernel_check.replaced.join(', ')})` : '') +
    '. Now drop photos.');
}

// Run photos ([name, bytes] pairs) one at a time; returns their result objects.
async function runPhotos(items) {
  const e = await ensureEngine();
  if (!modelInfo) throw new Error('load a model first (a .safetensors checkpoint)');
  const tta = params.get('tta') || $('tta').value;
  const out = [];
  for (let i = 0; i < items.length; i++) {
    const [name, bytes] = items[i];
    progress(i, items.length);
    status(`Photo ${i + 1} of ${items.length}: ${name} (tta ${tta})...`);
    // Let the page paint the status before the GPU work is queued.
    await new Promise((r) => setTimeout(r, 0));
    const r = await e.predict(bytes, name, tta);
    const info = JSON.parse(r.json());
    showPhoto(name, r, info);
    out.push({ info, mask: r.mask_png() });
  }
  progress(items.length, items.length);
  status(`Done: ${items.length} photo(s).`);
  return out;
}

const readFile = async (f) => new Uint8Array(await f.arrayBuffer());

async function handleFiles(files) {
  try {
    for (const f of files) {
      if (f.name.toLowerCase().endsWith('.safetensors')) await loadModel(await readFile(f), f.name);
      else photoFiles.push(f);
    }
    if (modelInfo && photoFiles.length) {
      const items = [];
      for (const f of photoFiles) items.push([f.name, await readFile(f)]);
      photoFiles = [];
      await runPhotos(items);
    } else if (photoFiles.length) {
      status(`${photoFiles.length} photo(s) waiting: now drop or pick a model (.safetensors).`);
    }
  } catch (err) {
    status(errText(err), true);
  }
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// The automation hook: ?model=URL&photo=URL.
async function automate() {
  const report = params.get('report');
  let result;
  try {
    const modelUrl = params.get('model');
    await loadModel(await fetchBytes(modelUrl), modelUrl.split('/').pop());
    const items = [];
    for (const u of params.getAll('photo')) items.push([u.split('/').pop(), await fetchBytes(u)]);
    if (!items.length) throw new Error('no photo: add &photo=URL');
    const res = await runPhotos(items);
    const first = res[0].info;
    const a = JSON.parse(engine.adapter());
    result = { ...first, model_size: first.model.size, adapter: a.name, adapter_info: a, photos: res.map((r) => r.info) };
    $('fluke-result').textContent = JSON.stringify(result, null, 1);
    $('fluke-mask').src = dataUrl(res[0].mask);
    document.title = 'fluke:done';
  } catch (err) {
    const msg = errText(err).replace(/\s+/g, ' ');
    status(msg, true);
    result = { error: msg };
    $('fluke-result').textContent = JSON.stringify(result);
    document.title = 'fluke:error: ' + msg;
  }
  if (report) {
    const body = JSON.stringify({ title: document.title, result, mask: $('fluke-mask').src || null });
    await fetch(report, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  }
}

const drop = $('drop');
drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (ev) => { ev.preventDefault(); drop.classList.remove('over'); handleFiles([...ev.dataTransfer.files]); });
$('model-file').addEventListener('change', (ev) => handleFiles([...ev.target.files]));
$('photo-files').addEventListener('change', (ev) => handleFiles([...ev.target.files]));

if (params.get('model')) {
  automate();
} else {
  ensureEngine().then(() => status('Ready: drop a model (.safetensors) and photos.'))
    .catch((err) => status(errText(err), true));
}
