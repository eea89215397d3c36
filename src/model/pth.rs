//! PyTorch checkpoints (`torch.save` files, `.pth` / `.pt`) read directly: no Python, and nothing in the file run.
//!
//! A `.pth` is a pickle: a program for Python's pickle machine, which may import any module and call any function
//! (`os.system` included). fluke runs its own small pickle machine (`pickle.rs`) that knows a few opcodes and a
//! fixed list of globals, and builds only plain values (None, bools, ints, floats, strings, tuples, lists, dicts) and
//! lazy tensor records; any other opcode or global is an error naming it. So a file can describe tensors but never make fluke do
//! anything else, and a file that needs more (a pickled `nn.Module`, numpy arrays, argparse hyper-parameters) is
//! refused with the fix: save the state dict alone, `torch.save(model.state_dict(), path)`.
//!
//! Two containers, told apart by their first bytes (not the file name):
//! - **zip** (torch >= 1.6, the default): stored (uncompressed) records `<root>/data.pkl` (the pickle),
//!   `<root>/data/<key>` (each storage's raw little-endian bytes), `<root>/byteorder` ("little"; absent in old files).
//! - **legacy** (`_use_new_zipfile_serialization=False`, and every file from torch < 1.6, e.g. timm's
//!   `seresnet34-a4004e63.pth`): five pickles back to back, the magic number 0x1950a86a20f9469cfc6c, the protocol
//!   version 1001, a sys_info dict (`little_endian`, type sizes), the main pickle, the list of storage keys; then per
//!   key in that order a little-endian u64 element count and the storage's raw bytes.
//!
//! Opcodes (pickle protocols 2-5, the ones torch writes): PROTO FRAME STOP MARK POP POP_MARK DUP, NONE NEWTRUE
//! NEWFALSE BININT BININT1 BININT2 LONG1 LONG4 BINFLOAT, BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINSTRING
//! SHORT_BINSTRING, EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3, EMPTY_LIST LIST APPEND APPENDS, EMPTY_DICT DICT SETITEM
//! SETITEMS, BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET, GLOBAL STACK_GLOBAL, REDUCE BUILD BINPERSID.
//!
//! Globals, the whole allow-list, and what each becomes:
//! - `collections.OrderedDict` called with no arguments -> an empty dict (a state dict is one; BUILD then sets its
//!   `_metadata` attribute, which is ignored);
//! - `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` -> a tensor
//!   record (a view of a storage: element offset, sizes, strides), and its torch < 0.4 form `_rebuild_tensor(storage,
//!   offset, size, stride)`; `torch._utils._rebuild_parameter(tensor, ...)`
//!   -> that tensor;
//! - `torch.FloatStorage`, `HalfStorage`, `BFloat16Storage`, `DoubleStorage`, `LongStorage`, `IntStorage` (read) and
//!   `ByteStorage`, `CharStorage`, `ShortStorage`, `BoolStorage` (recognised, not converted: an error only if such a
//!   tensor is one fluke takes) -> the element type of a storage;
//! - persistent ids (BINPERSID) only of the form `("storage", <storage type>, key, location, numel[, view])`.
//!
//! Nothing else is allowed because every other global is code: calling it is how a pickle executes.
//!
//! What comes out: the tensors of the top-level dict, or, when it holds none, of the dict under `state_dict`,
//! `model_state_dict`, `model` or `module` (trainer checkpoints; their other entries are ignored); a `module.`
//! prefix (DataParallel) is dropped. f32, f16, bf16 and f64 become f32; int64/int32 (`num_batches_tracked`) come as
//! `is_int`, like the safetensors path. Strided views are gathered, never read past their storage; a view that
//! repeats elements (stride 0) is refused, so memory stays bounded by the file's size.

use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};

use super::pickle::{run_pickle, short, Dict, Elem, StorageRef, TensorRef, Value, FIX};
use super::weights::{Loaded, WeightFile};


/// The first bytes of a zip archive (a local file header).
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// LONG1 of 10 bytes holding torch's legacy magic number 0x1950a86a20f9469cfc6c (little-endian).
const LEGACY_MAGIC_LONG: [u8; 12] = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// What the legacy format's second pickle holds.
const LEGACY_PROTOCOL_VERSION: i64 = 1001;

/// The two containers of `torch.save`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PthFormat {
    Zip,
    Legacy,
}

/// Which torch format the bytes are, if any: zip by its local-header signature, legacy by a pickle PROTO opcode
/// followed (within a FRAME's length) by the magic number.
pub fn detect_pth(bytes: &[u8]) -> Option<PthFormat> {
    if bytes.starts_with(ZIP_MAGIC) {
        return Some(PthFormat::Zip);
    }
    let proto = bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]);
    let head = &bytes[..bytes.len().min(32)];
    if proto && head.windows(LEGACY_MAGIC_LONG.len()).any(|w| w == LEGACY_MAGIC_LONG) {
        return Some(PthFormat::Legacy);
    }
    None
}

/// Parse a torch checkpoint (either container) into its tensors.
pub fn parse_pth_bytes(bytes: &[u8]) -> Result<WeightFile> {
    match detect_pth(bytes) {
        Some(PthFormat::Zip) => parse_zip(bytes),
        Some(PthFormat::Legacy) => parse_legacy(bytes),
        None => bail!("not a PyTorch checkpoint (neither a zip archive nor a legacy torch pickle); {FIX}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// From the pickle's value to named tensors.

/// Where a trainer checkpoint keeps the model's state dict.
const WRAPPER_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "module"];

/// The string-keyed tensors of a dict.
fn tensors_of(d: &Dict) -> Vec<(String, Rc<TensorRef>)> {
    d.borrow()
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Some((k.to_string(), t.clone())),
            _ => None,
        })
        .collect()
}

/// The state dict: the top level's tensors, else those of the first wrapper key holding some (two levels deep at
/// most, so a cyclic pickle cannot recurse for ever).
fn state_dict(top: &Value, depth: usize) -> Result<Vec<(String, Rc<TensorRef>)>> {
    let Value::Dict(d) = top else { bail!("the checkpoint holds a {}, not a dict of tensors; {FIX}", top.kind()) };
    let found = tensors_of(d);
    if !found.is_empty() {
        return Ok(found);
    }
    if depth < 2 {
        for w in WRAPPER_KEYS {
            let inner = d.borrow().iter().find(|(k, _)| matches!(k, Value::Str(s) if &**s == w)).map(|(_, v)| v.clone());
            if let Some(inner @ Value::Dict(_)) = inner {
                if let Ok(t) = state_dict(&inner, depth + 1) {
                    return Ok(t);
                }
            }
        }
    }
    let keys: Vec<String> = d.borrow().iter().take(12).map(|(k, _)| short(k)).collect();
    bail!("the checkpoint's dict holds no tensors, at its top level or under {} (its keys: {}); {FIX}", WRAPPER_KEYS.join("/"), keys.join(", "))
}

/// Read one tensor out of its storage's raw bytes (`raw` starts at the storage's first element).
fn load_tensor(name: &str, t: &TensorRef, raw: &[u8]) -> Result<Loaded> {
    let elem = t.storage.elem;
    let es = elem.size();
    let avail = (raw.len() / es) as u64;
    let numel = t.size.iter().try_fold(1u64, |a, &s| a.checked_mul(s)).ok_or_else(|| anyhow!("tensor {name}: its size {:?} overflows", t.size))?;
    let shape: Vec<usize> = t.size.iter().map(|&s| s as usize).collect();
    let base = t.offset.checked_add(t.storage.view_offset).ok_or_else(|| anyhow!("tensor {name}: its offset overflows"))?;
    let mut index = Vec::new(); // element indices into the storage, C order
    if numel > 0 {
        // The furthest element the view reaches must lie inside the storage.
        let last = t.size.iter().zip(&t.stride).try_fold(base, |a, (&s, &st)| (s - 1).checked_mul(st).and_then(|x| x.checked_add(a)));
        match last {
            Some(l) if l < avail => {}
            _ => bail!("tensor {name}: its view (offset {base}, size {:?}, stride {:?}) reaches past its storage of {avail} elements; the file is damaged", t.size, t.stride),
        }
        // Contiguous (C order, dimensions of size 1 have any stride): one slice. Otherwise gather, but never more
        // elements than the storage has (a stride-0 view would repeat them without bound).
        let mut expect = 1u64;
        let mut contiguous = true;
        for (&s, &st) in t.size.iter().zip(&t.stride).rev() {
            if s != 1 && st != expect {
                contiguous = false;
            }
            expect *= s;
        }
        if contiguous {
            index.extend(base..base + numel);
        } else {
            if numel > avail {
                bail!("tensor {name} repeats storage elements (size {:?}, stride {:?}); {FIX}", t.size, t.stride);
            }
            let mut idx = vec![0u64; t.size.len()];
            for _ in 0..numel {
                index.push(base + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>());
                for d in (0..idx.len()).rev() {
                    idx[d] += 1;
                    if idx[d] < t.size[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        }
    }
    let at = |i: u64| &raw[i as usize * es..(i as usize + 1) * es];
    let (data, is_int): (Vec<f32>, bool) = match elem {
        Elem::F32 => (index.iter().map(|&i| f32::from_le_bytes(at(i).try_into().unwrap())).collect(), false),
        Elem::F16 => (index.iter().map(|&i| half::f16::from_le_bytes(at(i).try_into().unwrap()).to_f32()).collect(), false),
        Elem::BF16 => (index.iter().map(|&i| half::bf16::from_le_bytes(at(i).try_into().unwrap()).to_f32()).collect(), false),
        Elem::F64 => (index.iter().map(|&i| f64::from_le_bytes(at(i).try_into().unwrap()) as f32).collect(), false),
        Elem::I64 => (index.iter().map(|&i| i64::from_le_bytes(at(i).try_into().unwrap()) as f32).collect(), true),
        Elem::I32 => (index.iter().map(|&i| i32::from_le_bytes(at(i).try_into().unwrap()) as f32).collect(), true),
        Elem::Other(dtype, _) => bail!("tensor {name} has dtype {dtype}; fluke reads f32, f16, bf16, f64, int64 and int32"),
    };
    Ok(Loaded { shape, data, is_int })
}

/// Named tensors -> a WeightFile, reading each storage through `storage_bytes` (once per key).
fn collect(top: &Value, mut storage_bytes: impl FnMut(&StorageRef) -> Result<Rc<[u8]>>) -> Result<WeightFile> {
    let mut cache: HashMap<String, Rc<[u8]>> = HashMap::new();
    let mut tensors = HashMap::new();
    for (name, t) in state_dict(top, 0)? {
        let raw = match cache.get(&t.storage.key) {
            Some(r) => r.clone(),
            None => {
                let r = storage_bytes(&t.storage)?;
                cache.insert(t.storage.key.clone(), r.clone());
                r
            }
        };
        let name = name.strip_prefix("module.").map(str::to_string).unwrap_or(name);
        let loaded = load_tensor(&name, &t, &raw)?;
        tensors.insert(name, loaded);
    }
    Ok(WeightFile { tensors, metadata: HashMap::new() })
}

// ---------------------------------------------------------------------------------------------------------------
// The two containers.

fn parse_zip(bytes: &[u8]) -> Result<WeightFile> {
    let zip = super::stored_zip::StoredZip::parse(bytes)
        .map_err(|e| anyhow!("not a readable zip archive ({e}); the file is damaged or truncated: copy or save it again"))?;
    // The pickle is `<root>/data.pkl`, root being whatever name the file was saved under.
    let pkl = zip
        .names()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("a zip archive without <name>/data.pkl, so not a torch.save file; {FIX}"))?;
    let root = pkl.trim_end_matches("data.pkl").to_string();
    let read = |name: &str| -> Result<&[u8]> {
        zip.get(name)
            .ok_or_else(|| anyhow!("record {name} is missing from the archive; the file is damaged: copy or save it again"))?
            .map_err(|e| anyhow!("{e}; the file is damaged: copy or save it again"))
    };
    if let Some(order) = zip.get(&format!("{root}byteorder")) {
        let order = order.map_err(|e| anyhow!("{e}; the file is damaged: copy or save it again"))?;
        if order != b"little" {
            bail!("the checkpoint was saved on a big-endian machine (byteorder {:?}); fluke reads little-endian files; {FIX}", String::from_utf8_lossy(order));
        }
    }
    let pickle = read(&pkl)?;
    let mut storages = HashMap::new();
    let top = run_pickle(pickle, &mut 0, &mut storages).with_context(|| format!("in {pkl}"))?;
    collect(&top, |s| Ok(Rc::from(read(&format!("{root}data/{}", s.key))?)))
}

fn parse_legacy(bytes: &[u8]) -> Result<WeightFile> {
    let mut pos = 0;
    let mut storages = HashMap::new();
    match run_pickle(bytes, &mut pos, &mut storages)? {
        Value::BigInt(b) if b[..] == LEGACY_MAGIC_LONG[2..] => {}
        _ => bail!("the first pickle is not torch's magic number; {FIX}"),
    }
    match run_pickle(bytes, &mut pos, &mut storages)? {
        Value::Int(LEGACY_PROTOCOL_VERSION) => {}
        v => bail!("legacy torch protocol version {} is not 1001; {FIX}", short(&v)),
    }
    let sys_info = run_pickle(bytes, &mut pos, &mut storages)?;
    if let Value::Dict(d) = &sys_info {
        let little = d.borrow().iter().find(|(k, _)| matches!(k, Value::Str(s) if &**s == "little_endian")).map(|(_, v)| v.clone());
        if let Some(Value::Bool(false)) = little {
            bail!("the checkpoint was saved on a big-endian machine; fluke reads little-endian files; {FIX}");
        }
    }
    let top = run_pickle(bytes, &mut pos, &mut storages).context("in the main pickle")?;
    let keys = run_pickle(bytes, &mut pos, &mut storages).context("in the storage list")?;
    let Value::List(keys) = keys else { bail!("the storage list is a {}, not a list; the file is damaged", keys.kind()) };
    // Storage records follow in the list's order: u64 element count, then the elements.
    let mut records: HashMap<String, &[u8]> = HashMap::new();
    for k in keys.borrow().iter() {
        let Value::Str(k) = k else { bail!("a storage key is a {}, not a string; the file is damaged", k.kind()) };
        let Some(&elem) = storages.get(&**k) else { bail!("storage {k} is listed but no tensor names it; the file is damaged") };
        let head = bytes.get(pos..pos + 8).ok_or_else(|| anyhow!("storage {k} is cut off (the file is truncated: copy or save it again)"))?;
        let n = u64::from_le_bytes(head.try_into().unwrap());
        let len = n.checked_mul(elem.size() as u64).filter(|&l| l <= (bytes.len() - pos - 8) as u64);
        let Some(len) = len else { bail!("storage {k} claims {n} elements, more than the file holds (the file is truncated: copy or save it again)") };
        records.insert(k.to_string(), &bytes[pos + 8..pos + 8 + len as usize]);
        pos += 8 + len as usize;
    }
    collect(&top, |s| {
        let r = records.get(&s.key).ok_or_else(|| anyhow!("storage {} is named by a tensor but not stored; the file is damaged", s.key))?;
        Ok(Rc::from(*r))
    })
}
