//! PyTorch checkpoints (`torch.save` files, `.pth` / `.pt`) read directly: no Python, and nothing in the file run.
//!
//! A `.pth` is a pickle: a program for Python's pickle machine, which may import any module and call any function
//! (`os.system` included). fluke runs its own small pickle machine that knows a few opcodes and a fixed list of
//! globals, and builds only plain values (None, bools, ints, floats, strings, tuples, lists, dicts) and lazy tensor
//! records; any other opcode or global is an error naming it. So a file can describe tensors but never make fluke do
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
//! Nothing else is allowed because every other global is code: calling it is how a pickle executes.
//!
//! What comes out: the tensors of the top-level dict, or, when it holds none, of the dict under `state_dict`,
//! `model_state_dict`, `model` or `module` (trainer checkpoints; their other entries are ignored); a `module.`
//! prefix (DataParallel) is dropped. f32, f16, bf16 and f64 become f32; int64/int32 (`num_batches_tracked`) come as
//! `is_int`, like the safetensors path. Strided views are gathered, never read past their storage; a view that
//! repeats elements (stride 0) is refused, so memory stays bounded by the file's size.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};

use super::weights::{Loaded, WeightFile};

/// The hint every error ends with.
const FIX: &str = "fluke reads torch.save() of a state dict: re-save it with torch.save(model.state_dict(), path)";

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
// Values the pickle machine builds.

/// Element type of a storage, from its `torch.*Storage` global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    /// Recognised but not converted (uint8, int8, int16, bool), with its torch name and element size.
    Other(&'static str, usize),
}

impl Elem {
    fn from_storage_name(name: &str) -> Option<Elem> {
        Some(match name {
            "FloatStorage" => Elem::F32,
            "HalfStorage" => Elem::F16,
            "BFloat16Storage" => Elem::BF16,
            "DoubleStorage" => Elem::F64,
            "LongStorage" => Elem::I64,
            "IntStorage" => Elem::I32,
            "ByteStorage" => Elem::Other("uint8", 1),
            "CharStorage" => Elem::Other("int8", 1),
            "ShortStorage" => Elem::Other("int16", 2),
            "BoolStorage" => Elem::Other("bool", 1),
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Elem::F16 | Elem::BF16 => 2,
            Elem::F32 | Elem::I32 => 4,
            Elem::F64 | Elem::I64 => 8,
            Elem::Other(_, s) => s,
        }
    }
}

/// The allow-listed globals (see the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    /// `_rebuild_tensor`, the same without requires_grad and hooks (files from torch < 0.4).
    RebuildTensor,
    RebuildParameter,
    Storage(Elem),
}

/// A storage named by a persistent id: its key (zip record name / legacy key), element type, and for legacy views
/// the element offset into the root storage.
#[derive(Debug)]
struct StorageRef {
    key: String,
    elem: Elem,
    view_offset: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage (in elements). No data yet.
#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: u64,
    size: Vec<u64>,
    stride: Vec<u64>,
}

type Dict = Rc<RefCell<Pairs>>;

/// The items of a tuple or list. Dropped without recursion (see `dismantle`), so a pickle nesting a million lists
/// cannot overflow the stack when its value is freed.
#[derive(Debug, Default)]
struct Items(Vec<Value>);
/// The entries of a dict, in insertion order (a key set twice keeps both; the later one wins when read).
#[derive(Debug, Default)]
struct Pairs(Vec<(Value, Value)>);

/// Free values iteratively: a container this is the last owner of gives its children to the work list instead of
/// dropping them inside its own drop.
fn dismantle(mut work: Vec<Value>) {
    while let Some(v) = work.pop() {
        match v {
            Value::Tuple(rc) => {
                if let Ok(mut items) = Rc::try_unwrap(rc) {
                    work.append(&mut items.0);
                }
            }
            Value::List(rc) => {
                if let Ok(cell) = Rc::try_unwrap(rc) {
                    work.append(&mut cell.into_inner().0);
                }
            }
            Value::Dict(rc) => {
                if let Ok(cell) = Rc::try_unwrap(rc) {
                    for (k, v) in std::mem::take(&mut cell.into_inner().0) {
                        work.push(k);
                        work.push(v);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        dismantle(std::mem::take(&mut self.0));
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        dismantle(std::mem::take(&mut self.0).into_iter().flat_map(|(k, v)| [k, v]).collect());
    }
}

impl std::ops::Deref for Items {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}
impl std::ops::DerefMut for Items {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.0
    }
}
impl std::ops::Deref for Pairs {
    type Target = Vec<(Value, Value)>;
    fn deref(&self) -> &Vec<(Value, Value)> {
        &self.0
    }
}
impl std::ops::DerefMut for Pairs {
    fn deref_mut(&mut self) -> &mut Vec<(Value, Value)> {
        &mut self.0
    }
}

/// A pickle value. Lists and dicts are shared (memo references see later SETITEMs, as in Python).
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64 (LONG1/LONG4): its little-endian two's-complement bytes.
    BigInt(Rc<Vec<u8>>),
    Float(f64),
    Str(Rc<str>),
    Tuple(Rc<Items>),
    List(Rc<RefCell<Items>>),
    Dict(Dict),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
    fn as_u64(&self, what: &str) -> Result<u64> {
        match self {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            v => bail!("{what} is {} ({}), not a non-negative int", v.kind(), short(v)),
        }
    }
    fn as_u64s(&self, what: &str) -> Result<Vec<u64>> {
        match self {
            Value::Tuple(t) => t.iter().map(|v| v.as_u64(what)).collect(),
            v => bail!("{what} is {}, not a tuple", v.kind()),
        }
    }
}

/// A value in an error message, cut short.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        other => other.kind().to_string(),
    };
    s.chars().take(60).collect()
}

/// The allow-list: anything else a pickle names is refused (with the fix).
fn resolve_global(module: &str, name: &str) -> Result<Global> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", s) if Elem::from_storage_name(s).is_some() => Global::Storage(Elem::from_storage_name(s).unwrap()),
        _ => {
            let shown: String = format!("{module}.{name}").chars().take(80).collect();
            bail!(
                "the pickle asks for the Python global {shown}, which fluke does not allow (it never runs code from a \
                 file; it reads tensors, dicts, lists and numbers only); {FIX}"
            )
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// The pickle machine.

/// One pickle program run from `pos` to its STOP; `storages` collects the element type of every storage key met.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: &'a mut HashMap<String, Elem>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            bail!("the pickle ends early (needs {n} bytes at byte {}, has {}); the file is truncated: copy or save it again", self.pos, self.data.len() - self.pos)
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn len_u64(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| anyhow!("a length of {n} bytes in the pickle; the file is damaged"))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().take(256).position(|&b| b == b'\n') else {
            bail!("a GLOBAL name at byte {} has no end; the file is damaged", self.pos)
        };
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| anyhow!("a GLOBAL name at byte {} is not text", self.pos))?;
        self.pos += n + 1;
        Ok(s)
    }
    fn text(&mut self, n: usize) -> Result<Value> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| anyhow!("a string in the pickle is not UTF-8; the file is damaged"))?;
        Ok(Value::Str(Rc::from(s)))
    }
    fn pop(&mut self) -> Result<Value> {
        // Values below the last MARK belong to the enclosing collection: an opcode may not take them.
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail!("the pickle pops an empty stack at byte {}; the file is damaged", self.pos);
        }
        Ok(self.stack.pop().unwrap())
    }
    fn top(&mut self) -> Result<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail!("the pickle reads an empty stack at byte {}; the file is damaged", self.pos);
        }
        Ok(self.stack.last_mut().unwrap())
    }
    /// Everything above the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(m) = self.marks.pop() else { bail!("the pickle closes a MARK it never opened at byte {}; the file is damaged", self.pos) };
        Ok(self.stack.split_off(m))
    }
    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.pop()?);
        }
        v.reverse();
        Ok(v)
    }
    fn memo_put(&mut self, key: u32) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }
    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = self.memo.get(&key).cloned().ok_or_else(|| anyhow!("the pickle reads memo slot {key}, never written; the file is damaged"))?;
        self.stack.push(v);
        Ok(())
    }
    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if items.len() % 2 != 0 {
            bail!("the pickle sets a dict item without a value; the file is damaged");
        }
        let Value::Dict(d) = self.top()? else { bail!("the pickle sets items on a {}, not a dict", self.top()?.kind()) };
        let d = d.clone();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.borrow_mut().push((k, v));
        }
        Ok(())
    }
    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let Value::List(l) = self.top()? else { bail!("the pickle appends to a {}, not a list", self.top()?.kind()) };
        l.borrow_mut().extend(items);
        Ok(())
    }

    /// Run to STOP and return the result.
    fn run(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if !(2..=5).contains(&p) {
                        bail!("pickle protocol {p}; torch writes 2 to 5");
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint for buffered readers; the bytes follow as usual
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement of n bytes
                    let n = if op == 0x8a { self.u8()? as usize } else { self.u32()? as usize };
                    let b = self.take(n)?;
                    let v = if n == 0 {
                        Value::Int(0)
                    } else if n <= 8 {
                        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
                        let mut w = [fill; 8];
                        w[..n].copy_from_slice(b);
                        Value::Int(i64::from_le_bytes(w))
                    } else {
                        Value::BigInt(Rc::new(b.to_vec()))
                    };
                    self.stack.push(v)
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.stack.push(Value::Float(v))
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.text(n)?;
                    self.stack.push(v)
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.stack.push(v)
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let v = self.text(n)?;
                    self.stack.push(v)
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING / BINSTRING: Python 2 byte strings (keys of very old files), read as Latin-1
                    let n = if op == b'U' { self.u8()? as usize } else { self.u32()? as usize };
                    let s: String = self.take(n)?.iter().map(|&c| c as char).collect();
                    self.stack.push(Value::Str(Rc::from(s)))
                }
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b't' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(Items(v))))
                }
                0x85..=0x87 => {
                    let v = self.pop_n((op - 0x84) as usize)?;
                    self.stack.push(Value::Tuple(Rc::new(Items(v))))
                }
                b']' => self.stack.push(Value::List(Rc::default())),
                b'l' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(Items(v)))))
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?
                }
                b'e' => {
                    let v = self.pop_mark()?;
                    self.append(v)?
                }
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b'd' => {
                    let v = self.pop_mark()?;
                    self.stack.push(Value::Dict(Rc::default()));
                    self.set_items(v)?
                }
                b's' => {
                    let v = self.pop_n(2)?;
                    self.set_items(v)?
                }
                b'u' => {
                    let v = self.pop_mark()?;
                    self.set_items(v)?
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32; // MEMOIZE: the next free slot
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(resolve_global(module, name)?))
                }
                0x93 => {
                    let v = self.pop_n(2)?;
                    let (Value::Str(module), Value::Str(name)) = (&v[0], &v[1]) else {
                        bail!("STACK_GLOBAL at byte {at} names a global with a {} and a {}; the file is damaged", v[0].kind(), v[1].kind())
                    };
                    self.stack.push(Value::Global(resolve_global(module, name)?))
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = self.persistent_load(&pid)?;
                    self.stack.push(s)
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = reduce(&f, &args)?;
                    self.stack.push(v)
                }
                b'b' => {
                    // BUILD: sets attributes of the object below. A state dict's `_metadata` (version numbers per
                    // module) is the only one torch writes; it is dropped.
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => bail!("the pickle sets the state of a {} ({}); {FIX}", other.kind(), state.kind()),
                    }
                }
                _ => bail!("pickle opcode 0x{op:02x} at byte {at} is not one fluke reads (a torch tensor file needs none like it); {FIX}"),
            }
        }
    }

    /// `("storage", <storage type>, key, location, numel[, view])` -> a storage reference.
    fn persistent_load(&mut self, pid: &Value) -> Result<Value> {
        let Value::Tuple(t) = pid else { bail!("a persistent id is a {}, not a storage tuple; {FIX}", pid.kind()) };
        let bad = || anyhow!("a persistent id is not (\"storage\", type, key, location, numel); {FIX}");
        if t.len() < 5 || t.len() > 6 {
            return Err(bad());
        }
        let (Value::Str(tag), Value::Global(Global::Storage(elem)), Value::Str(key)) = (&t[0], &t[1], &t[2]) else {
            return Err(bad());
        };
        if &**tag != "storage" {
            return Err(bad());
        }
        t[4].as_u64("a storage's element count")?;
        // Legacy files (torch < 1.6) may name a view of a storage: (view key, element offset, element count).
        let (key, view_offset) = match t.get(5) {
            None | Some(Value::None) => (key.to_string(), 0),
            Some(Value::Tuple(v)) if v.len() == 3 => {
                let Value::Str(_) = &v[0] else { return Err(bad()) };
                (key.to_string(), v[1].as_u64("a storage view's offset")?)
            }
            Some(_) => return Err(bad()),
        };
        if let Some(old) = self.storages.insert(key.clone(), *elem) {
            if old != *elem {
                bail!("storage {key} is named with two element types ({old:?}, {elem:?}); the file is damaged");
            }
        }
        Ok(Value::Storage(Rc::new(StorageRef { key, elem: *elem, view_offset })))
    }
}

/// REDUCE: call an allow-listed global with its argument tuple.
fn reduce(f: &Value, args: &Value) -> Result<Value> {
    let Value::Tuple(a) = args else { bail!("the pickle calls a function with a {} of arguments; the file is damaged", args.kind()) };
    let Value::Global(g) = f else { bail!("the pickle calls a {}, not a function; {FIX}", f.kind()) };
    match g {
        Global::OrderedDict if a.is_empty() => Ok(Value::Dict(Rc::default())),
        Global::RebuildTensorV2 | Global::RebuildTensor
            if (*g == Global::RebuildTensorV2 && (a.len() == 6 || a.len() == 7)) || (*g == Global::RebuildTensor && a.len() == 4) =>
        {
            let Value::Storage(s) = &a[0] else { bail!("a tensor is rebuilt from a {}, not a storage; {FIX}", a[0].kind()) };
            let size = a[2].as_u64s("a tensor's size")?;
            let stride = a[3].as_u64s("a tensor's stride")?;
            if size.len() != stride.len() {
                bail!("a tensor has {} sizes but {} strides; the file is damaged", size.len(), stride.len());
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage: s.clone(), offset: a[1].as_u64("a tensor's offset")?, size, stride })))
        }
        Global::RebuildParameter if a.len() == 3 => match &a[0] {
            Value::Tensor(t) => Ok(Value::Tensor(t.clone())),
            other => bail!("a parameter is rebuilt from a {}, not a tensor; {FIX}", other.kind()),
        },
        Global::Storage(_) => bail!("the pickle creates a storage directly; {FIX}"),
        _ => bail!("the pickle calls {g:?} with {} arguments, not as torch.save does; {FIX}", a.len()),
    }
}

/// Run one pickle starting at `*pos`; `*pos` ends after its STOP.
fn run_pickle(data: &[u8], pos: &mut usize, storages: &mut HashMap<String, Elem>) -> Result<Value> {
    let mut m = Machine { data, pos: *pos, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), storages };
    let v = m.run()?;
    *pos = m.pos;
    Ok(v)
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
