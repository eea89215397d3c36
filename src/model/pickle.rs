//! The pickle machine behind `pth.rs`: the subset of Python's pickle that `torch.save` writes, run without
//! importing or calling anything (the opcodes and the allow-list of globals are in `pth.rs`'s header).
//!
//! A pickle is a program for a stack machine: opcodes push values (ints, strings, empty containers), build tuples
//! from the values above a MARK, fill dicts and lists (SETITEMS, APPENDS), store and fetch values in a memo
//! (BINPUT/BINGET), name a global (GLOBAL) and call it with an argument tuple (REDUCE). Here a global can only be one
//! of the allow-listed names, and "calling" one builds a plain value (an empty dict) or a tensor record, never code.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{anyhow, bail, Result};

/// The hint every error ends with.
pub(super) const FIX: &str = "fluke reads torch.save() of a state dict: re-save it with torch.save(model.state_dict(), path)";

// ---------------------------------------------------------------------------------------------------------------
// Values the pickle machine builds.

/// Element type of a storage, from its `torch.*Storage` global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Elem {
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
    pub(super) fn size(self) -> usize {
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
pub(super) enum Global {
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
pub(super) struct StorageRef {
    pub(super) key: String,
    pub(super) elem: Elem,
    pub(super) view_offset: u64,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage (in elements). No data yet.
#[derive(Debug)]
pub(super) struct TensorRef {
    pub(super) storage: Rc<StorageRef>,
    pub(super) offset: u64,
    pub(super) size: Vec<u64>,
    pub(super) stride: Vec<u64>,
}

pub(super) type Dict = Rc<RefCell<Pairs>>;

/// The items of a tuple or list. Dropped without recursion (see `dismantle`), so a pickle nesting a million lists
/// cannot overflow the stack when its value is freed.
#[derive(Debug, Default)]
pub(super) struct Items(Vec<Value>);
/// The entries of a dict, in insertion order (a key set twice keeps both; the later one wins when read).
#[derive(Debug, Default)]
pub(super) struct Pairs(Vec<(Value, Value)>);

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
pub(super) enum Value {
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
    pub(super) fn kind(&self) -> &'static str {
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
pub(super) fn short(v: &Value) -> String {
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
        if !items.len().is_multiple_of(2) {
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
pub(super) fn run_pickle(data: &[u8], pos: &mut usize, storages: &mut HashMap<String, Elem>) -> Result<Value> {
    let mut m = Machine { data, pos: *pos, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), storages };
    let v = m.run()?;
    *pos = m.pos;
    Ok(v)
}

