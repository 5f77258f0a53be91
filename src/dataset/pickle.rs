//! `refs(<split_by>).p`: a Python pickle (Python 2, protocol 2 in the distributed files) holding a
//! list of ref dicts.
//!
//! Two steps, so that nothing a pickle names is ever acted on:
//! 1. [`parse`] runs the opcodes (the layout of CPython's `pickletools`, protocols 0–5) on a data-only
//!    unpickler of its own and refuses any opcode that names a global or builds an object (GLOBAL,
//!    STACK_GLOBAL, INST, OBJ, NEWOBJ, BUILD, persistent ids, extension codes). The one global
//!    allowed is `_codecs.encode`, which is how Python 3 writes a byte string at protocol ≤ 2; it is
//!    interpreted, never called. It also refuses what would only hurt later: containers nested
//!    deeper than [`MAX_DEPTH`] (serde and `Drop` recurse once per level, and 10,000 levels fit in
//!    20 KB), integers over [`MAX_INT_BYTES`] (big-integer parsing is quadratic), memo references
//!    expanding the data far beyond its size, a shared container grown after it was fetched from
//!    the memo (Python's pickler never writes that for data), and stack underflows.
//!    Its own unpickler, rather than `serde-pickle`'s parser, because that parser consumes the memo
//!    entries inside a shared container on its first visit: two sentences sharing one tokens list
//!    (a legitimate memo reference) were refused as a "recursive structure".
//! 2. `serde-pickle` turns each list entry's value into a [`WireRef`].
//!
//! Strings: Python 2 wrote `str` as byte strings (SHORT_BINSTRING/BINSTRING, kept as bytes) and
//! `unicode` as BINUNICODE. [`PyText`] accepts both; the reader then decodes bytes as UTF-8 and
//! reports invalid ones naming the ref and the field.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_pickle::{HashableValue, Value};

/// A text field as Python 2 stored it: a byte string or a unicode string.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum PyText {
    Bytes(Vec<u8>),
    Text(String),
}

impl PyText {
    /// The text, or the bytes back when they are not UTF-8.
    pub fn into_string(self) -> Result<String, Vec<u8>> {
        match self {
            PyText::Text(s) => Ok(s),
            PyText::Bytes(b) => String::from_utf8(b).map_err(|e| e.into_bytes()),
        }
    }
}

impl<'de> Deserialize<'de> for PyText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PyTextVisitor;
        impl<'de> Visitor<'de> for PyTextVisitor {
            type Value = PyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string or a unicode string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PyText, E> {
                Ok(PyText::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<PyText, E> {
                Ok(PyText::Text(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PyText, E> {
                Ok(PyText::Bytes(v.to_owned()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<PyText, E> {
                Ok(PyText::Bytes(v))
            }
        }
        deserializer.deserialize_any(PyTextVisitor)
    }
}

/// One sentence dict of a ref.
#[derive(Debug, Deserialize)]
pub(super) struct WireSentence {
    pub sent_id: i64,
    pub sent: PyText,
    pub raw: PyText,
    pub tokens: Vec<PyText>,
}

/// One ref dict. Its own `file_name` (`..._<ann_id>.jpg`) names no file and is not read: refs are
/// joined to images through `image_id`.
#[derive(Debug, Deserialize)]
pub(super) struct WireRef {
    pub ref_id: i64,
    pub ann_id: i64,
    pub image_id: i64,
    pub category_id: i64,
    pub split: PyText,
    pub sent_ids: Vec<i64>,
    pub sentences: Vec<WireSentence>,
}

/// Why [`parse`] refused a pickle.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NotData {
    /// Byte offset of the opcode.
    pub offset: usize,
    /// What the opcode does, e.g. ``names the global `posix.system` (GLOBAL)``.
    pub what: String,
}

/// The globals a data pickle may name: pure data constructors that [`parse`] interprets itself.
const ALLOWED_GLOBALS: &[(&[u8], &[u8])] = &[(b"_codecs", b"encode")];

/// How deep containers may nest. A refs file nests five levels (the list → a ref dict → its
/// sentences list → a sentence dict → its tokens list); 100 leaves room for any data and none for
/// a stack overflow in the recursive steps after parsing (serde, `Drop`).
pub(super) const MAX_DEPTH: u32 = 100;

/// The longest binary integer accepted, in bytes (LONG1/LONG4): 64 bits, what every id needs.
/// Parsing a million-digit integer is quadratic; such a number is no refs field.
pub(super) const MAX_INT_BYTES: usize = 8;

/// The longest text integer (INT/LONG, protocol 0), in characters: 64 bits, a sign and `L`.
const MAX_INT_CHARS: usize = 22;

/// Values a pickle may expand to per byte (memo references copy what they refer to): a refs file
/// stays near 1; a "billion laughs" of nested shared lists is refused long before memory runs out.
const MAX_VALUES_PER_BYTE: u64 = 16;

/// One opcode: where it starts, its byte, and its argument.
struct Op<'a> {
    offset: usize,
    code: u8,
    arg: Arg<'a>,
}

enum Arg<'a> {
    None,
    /// A newline-terminated argument (protocol 0), without the newline.
    Line(&'a [u8]),
    /// GLOBAL and INST: module and name.
    Lines(&'a [u8], &'a [u8]),
    /// A length-prefixed or fixed-size argument.
    Bytes(&'a [u8]),
}

/// Reads the opcode at `*pos` and its argument (the layout of CPython's `pickletools`, protocols
/// 0–5), refusing unknown opcodes and truncated arguments.
fn read_op<'a>(data: &'a [u8], pos: &mut usize) -> Result<Op<'a>, NotData> {
    let offset = *pos;
    let code = *data.get(offset).ok_or_else(|| NotData {
        offset,
        what: "ends before its STOP opcode".into(),
    })?;
    *pos += 1;
    let truncated = || NotData {
        offset,
        what: format!("is truncated inside opcode 0x{code:02x}"),
    };
    let arg = match code {
        // No argument: STOP MARK POP POP_MARK DUP NONE APPEND DICT EMPTY_DICT APPENDS LIST
        // EMPTY_LIST SETITEM TUPLE EMPTY_TUPLE SETITEMS BUILD REDUCE OBJ TUPLE1-3 NEWTRUE NEWFALSE
        // EMPTY_SET ADDITEMS FROZENSET NEWOBJ NEWOBJ_EX STACK_GLOBAL MEMOIZE BINPERSID
        // NEXT_BUFFER READONLY_BUFFER.
        b'.'
        | b'('
        | b'0'
        | b'1'
        | b'2'
        | b'N'
        | b'a'
        | b'd'
        | b'}'
        | b'e'
        | b'l'
        | b']'
        | b's'
        | b't'
        | b')'
        | b'u'
        | b'b'
        | b'R'
        | b'o'
        | b'Q'
        | 0x81
        | 0x85..=0x89
        | 0x8f..=0x94
        | 0x97
        | 0x98 => Arg::None,
        // One line: FLOAT INT LONG STRING UNICODE GET PUT PERSID.
        b'F' | b'I' | b'L' | b'S' | b'V' | b'g' | b'p' | b'P' => {
            Arg::Line(read_line(data, pos).ok_or_else(truncated)?)
        }
        // Two lines: GLOBAL INST.
        b'c' | b'i' => {
            let module = read_line(data, pos).ok_or_else(truncated)?;
            let name = read_line(data, pos).ok_or_else(truncated)?;
            Arg::Lines(module, name)
        }
        // Fixed size: BININT1 BINGET BINPUT PROTO EXT1 (1), BININT2 EXT2 (2), BININT
        // LONG_BINGET LONG_BINPUT EXT4 (4), BINFLOAT FRAME (8).
        b'K' | b'h' | b'q' | 0x80 | 0x82 => Arg::Bytes(take(data, pos, 1).ok_or_else(truncated)?),
        b'M' | 0x83 => Arg::Bytes(take(data, pos, 2).ok_or_else(truncated)?),
        b'J' | b'j' | b'r' | 0x84 => Arg::Bytes(take(data, pos, 4).ok_or_else(truncated)?),
        b'G' | 0x95 => Arg::Bytes(take(data, pos, 8).ok_or_else(truncated)?),
        // Length-prefixed: SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1 (u8), BINSTRING
        // BINUNICODE BINBYTES LONG4 (32 bit), BINUNICODE8 BINBYTES8 BYTEARRAY8 (64 bit).
        b'U' | b'C' | 0x8c | 0x8a | b'T' | b'X' | b'B' | 0x8b | 0x8d | 0x8e | 0x96 => {
            let width = match code {
                b'U' | b'C' | 0x8c | 0x8a => 1,
                b'T' | b'X' | b'B' | 0x8b => 4,
                _ => 8,
            };
            let len = read_le(data, pos, width).ok_or_else(truncated)?;
            if matches!(code, 0x8a | 0x8b) && len > MAX_INT_BYTES as u64 {
                return Err(NotData {
                    offset,
                    what: format!(
                        "holds an integer of {len} bytes (limit {MAX_INT_BYTES}: no field of a refs file needs more than 64 bits)"
                    ),
                });
            }
            let len = usize::try_from(len).map_err(|_| truncated())?;
            Arg::Bytes(take(data, pos, len).ok_or_else(truncated)?)
        }
        other => {
            return Err(NotData {
                offset,
                what: format!("has an unknown opcode 0x{other:02x}"),
            });
        }
    };
    Ok(Op { offset, code, arg })
}

/// The memo ids that GET opcodes fetch: only those values are kept in the memo while parsing.
fn fetched_ids(data: &[u8]) -> Result<HashSet<u64>, NotData> {
    let mut ids = HashSet::new();
    let mut pos = 0;
    loop {
        let op = read_op(data, &mut pos)?;
        match (op.code, &op.arg) {
            (b'.', _) => return Ok(ids),
            (b'g', Arg::Line(l)) => {
                ids.insert(parse_decimal(l).ok_or_else(|| NotData {
                    offset: op.offset,
                    what: "has a memo index that is not a number".into(),
                })?);
            }
            (b'h' | b'j', Arg::Bytes(b)) => {
                ids.insert(le(b));
            }
            _ => {}
        }
    }
}

/// One value on the unpickler stack, with what the checks need: how deep its containers nest,
/// how many values it holds, which memo slot holds it, whether it is a shared (fetched) copy.
#[derive(Debug, Clone)]
struct Item {
    value: Value,
    depth: u32,
    size: u64,
    memo: Option<u64>,
    fetched: bool,
    /// The allowed global `_codecs.encode`, good for REDUCE only.
    codecs_encode: bool,
}

impl Item {
    fn scalar(value: Value) -> Item {
        Item {
            value,
            depth: 0,
            size: 1,
            memo: None,
            fetched: false,
            codecs_encode: false,
        }
    }
}

/// Refuses a global among data (only REDUCE may consume it).
fn no_global(children: &[Item]) -> Result<(), String> {
    if children.iter().any(|c| c.codecs_encode) {
        return Err("uses the global `_codecs.encode` as data".into());
    }
    Ok(())
}

/// CPython's `_Unpickler` for data: the stack (the items since the last MARK are CPython's
/// `stack`, older ones its `metastack`), the marks' positions and the memo.
struct Machine {
    items: Vec<Item>,
    marks: Vec<usize>,
    /// Values of fetched memo slots whose item has left the stack (depth, size, value).
    memo: HashMap<u64, (u32, u64, Value)>,
    /// Memo slots ever stored (MEMOIZE numbers the next one).
    stored: u64,
    fetched: HashSet<u64>,
    values: u64,
    max_values: u64,
}

impl Machine {
    fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// An item leaves the stack: keep its value if a GET will want it.
    fn leave(&mut self, item: &Item) {
        if let Some(id) = item.memo
            && self.fetched.contains(&id)
        {
            self.memo
                .insert(id, (item.depth, item.size, item.value.clone()));
        }
    }

    fn pop(&mut self) -> Result<Item, String> {
        if self.items.len() <= self.floor() {
            return Err("pops a value from an empty stack".into());
        }
        let item = self.items.pop().expect("checked above");
        self.leave(&item);
        Ok(item)
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| "needs a MARK that was never set".to_string())?;
        let items = self.items.split_off(mark);
        for item in &items {
            self.leave(item);
        }
        Ok(items)
    }

    fn count(&mut self, n: u64) -> Result<(), String> {
        self.values += n;
        if self.values > self.max_values {
            return Err(format!(
                "expands to more than {} values (memo references copying shared objects); a refs file does not",
                self.max_values
            ));
        }
        Ok(())
    }

    /// A new container from `children` (LIST, TUPLE, DICT, FROZENSET, TUPLE1-3, EMPTY_*).
    fn container(&mut self, kind: u8, children: Vec<Item>) -> Result<(), String> {
        no_global(&children)?;
        let depth = children.iter().map(|c| c.depth).max().unwrap_or(0) + 1;
        check_depth(depth)?;
        let size = 1 + children.iter().map(|c| c.size).sum::<u64>();
        let values = children.into_iter().map(|c| c.value);
        let value = match kind {
            b']' | b'l' => Value::List(values.collect()),
            b')' | b't' | 0x85..=0x87 => Value::Tuple(values.collect()),
            b'}' | b'd' => Value::Dict(pairs(values)?),
            0x8f => Value::Set(Default::default()),
            _ => Value::FrozenSet(hashables(values)?),
        };
        self.push(Item {
            depth,
            size,
            ..Item::scalar(value)
        });
        Ok(())
    }

    /// Adds children to the container on top of the stack (APPEND(S), SETITEM(S), ADDITEMS).
    fn fill_top(&mut self, kind: u8, children: Vec<Item>) -> Result<(), String> {
        no_global(&children)?;
        if self.items.len() <= self.floor() {
            return Err("adds to a container that is not on the stack".into());
        }
        let top = self.items.last_mut().expect("checked above");
        if top.fetched {
            return Err(
                "adds to a container fetched back from the memo (a shared object), which a data pickle never does"
                    .into(),
            );
        }
        let child = children.iter().map(|c| c.depth).max().unwrap_or(0);
        top.depth = top.depth.max(child + 1);
        check_depth(top.depth)?;
        top.size += children.iter().map(|c| c.size).sum::<u64>();
        let values = children.into_iter().map(|c| c.value);
        match (&mut top.value, kind) {
            (Value::List(list), b'a' | b'e') => list.extend(values),
            (Value::Dict(dict), b's' | b'u') => dict.extend(pairs(values)?),
            (Value::Set(set), 0x90) => set.extend(hashables(values)?),
            (other, _) => {
                return Err(format!(
                    "adds items to {} with opcode {:?}",
                    kind_of(other),
                    kind as char
                ));
            }
        }
        Ok(())
    }

    fn memoize(&mut self, id: u64) -> Result<(), String> {
        let top = self
            .items
            .last_mut()
            .ok_or_else(|| "memoizes a value from an empty stack".to_string())?;
        top.memo = Some(id);
        self.stored = self.stored.max(id + 1);
        Ok(())
    }

    /// GET: a copy of the memoized value, from the stack while its item is still there.
    fn fetch(&mut self, id: u64) -> Result<(), String> {
        let found = self
            .items
            .iter()
            .rev()
            .find(|i| i.memo == Some(id))
            .map(|i| (i.depth, i.size, i.value.clone()));
        let (depth, size, value) = found
            .or_else(|| self.memo.get(&id).cloned())
            .ok_or_else(|| format!("fetches memo entry {id}, which was never stored"))?;
        self.count(size)?;
        self.push(Item {
            depth,
            size,
            memo: Some(id),
            fetched: true,
            ..Item::scalar(value)
        });
        Ok(())
    }
}

fn pairs(values: impl Iterator<Item = Value>) -> Result<BTreeMap<HashableValue, Value>, String> {
    let values: Vec<Value> = values.collect();
    if !values.len().is_multiple_of(2) {
        return Err("sets a dict key without a value".into());
    }
    let mut map = BTreeMap::new();
    let mut it = values.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let key = k
            .into_hashable()
            .map_err(|_| "uses a list or dict as a dict key".to_string())?;
        map.insert(key, v);
    }
    Ok(map)
}

fn hashables(values: impl Iterator<Item = Value>) -> Result<BTreeSet<HashableValue>, String> {
    values
        .map(|v| {
            v.into_hashable()
                .map_err(|_| "puts a list or dict in a set".to_string())
        })
        .collect()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        _ => "a scalar",
    }
}

fn check_depth(depth: u32) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "nests containers more than {MAX_DEPTH} levels deep (a refs file needs 5)"
        ));
    }
    Ok(())
}

/// Parses a data-only pickle into a value, refusing anything that names code or builds objects
/// and data nested or sized to hurt (see the module documentation). The one global allowed,
/// `_codecs.encode`, is interpreted here (Python 3's protocol-2 bytes), never called.
pub(super) fn parse(data: &[u8]) -> Result<Value, NotData> {
    let fetched = fetched_ids(data)?;
    let mut m = Machine {
        items: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        stored: 0,
        fetched,
        values: 0,
        max_values: MAX_VALUES_PER_BYTE * data.len() as u64 + 1_000_000,
    };
    let mut pos = 0usize;
    // The last two string literals pushed, to name what a STACK_GLOBAL would have looked up.
    let mut last_strings: [Option<Vec<u8>>; 2] = [None, None];
    loop {
        let Op { offset, code, arg } = read_op(data, &mut pos)?;
        let refuse = |what: String| Err(NotData { offset, what });
        let mut pushed_string: Option<Vec<u8>> = None;
        if code != b'.'
            && !matches!(code, b'q' | b'r' | b'p' | 0x94 | 0x80 | 0x95)
            && let Err(what) = m.count(1)
        {
            return refuse(what);
        }
        let step: Result<(), String> = match (code, arg) {
            (b'.', _) => {
                return match m.pop() {
                    Ok(item) if !item.codecs_encode => Ok(item.value),
                    Ok(_) => refuse("ends with a global, not data".into()),
                    Err(what) => refuse(what),
                };
            }
            (b'(', _) => {
                m.marks.push(m.items.len());
                Ok(())
            }
            // POP: the top item, or the MARK when nothing was pushed since (CPython's load_pop).
            (b'0', _) if m.items.len() > m.floor() => m.pop().map(drop),
            (b'0' | b'1', _) => m.pop_mark().map(drop),
            // DUP: the same object twice, so a shared one.
            (b'2', _) => match m.items.last().cloned() {
                Some(top) => {
                    m.push(Item {
                        fetched: true,
                        ..top
                    });
                    Ok(())
                }
                None => Err("duplicates a value from an empty stack".into()),
            },
            (b'N', _) => {
                m.push(Item::scalar(Value::None));
                Ok(())
            }
            (0x88 | 0x89, _) => {
                m.push(Item::scalar(Value::Bool(code == 0x88)));
                Ok(())
            }
            (b')' | b']' | b'}' | 0x8f, _) => m.container(code, Vec::new()),
            (b'a', _) => m.pop().and_then(|child| m.fill_top(code, vec![child])),
            (b'e' | b'u' | 0x90, _) => m.pop_mark().and_then(|children| m.fill_top(code, children)),
            (b's', _) => m
                .pop()
                .and_then(|v| m.pop().and_then(|k| m.fill_top(code, vec![k, v]))),
            (b'l' | b't' | b'd' | 0x91, _) => m
                .pop_mark()
                .and_then(|children| m.container(code, children)),
            (0x85..=0x87, _) => {
                let n = usize::from(code - 0x84);
                (0..n)
                    .map(|_| m.pop())
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|mut children| {
                        children.reverse();
                        m.container(code, children)
                    })
            }
            (0x94, _) => m.memoize(m.stored),
            (b'q' | b'r', Arg::Bytes(b)) => m.memoize(le(b)),
            (b'h' | b'j', Arg::Bytes(b)) => m.fetch(le(b)),
            (b'p' | b'g', Arg::Line(l)) => match parse_decimal(l) {
                Some(id) if code == b'p' => m.memoize(id),
                Some(id) => m.fetch(id),
                None => Err("has a memo index that is not a number".into()),
            },
            (0x80 | 0x95, _) => Ok(()),
            // Integers.
            (b'K' | b'M', Arg::Bytes(b)) => {
                m.push(Item::scalar(Value::I64(le(b) as i64)));
                Ok(())
            }
            (b'J', Arg::Bytes(b)) => {
                m.push(Item::scalar(Value::I64(i64::from(le(b) as u32 as i32))));
                Ok(())
            }
            (0x8a | 0x8b, Arg::Bytes(b)) => {
                m.push(Item::scalar(Value::I64(long_le(b))));
                Ok(())
            }
            (b'I' | b'L', Arg::Line(l)) => text_int(code, l).map(|v| m.push(Item::scalar(v))),
            // Floats.
            (b'G', Arg::Bytes(b)) => {
                let bits = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                m.push(Item::scalar(Value::F64(f64::from_bits(bits))));
                Ok(())
            }
            (b'F', Arg::Line(l)) => std::str::from_utf8(l)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .ok_or_else(|| "has a FLOAT that is not a number".to_string())
                .map(|f| m.push(Item::scalar(Value::F64(f)))),
            // Byte strings: Python 2's `str` (SHORT_BINSTRING BINSTRING STRING) and bytes.
            (b'U' | b'T' | b'C' | b'B' | 0x8e | 0x96, Arg::Bytes(b)) => {
                if code != 0x8e && code != 0x96 {
                    pushed_string = Some(b.to_vec());
                }
                m.push(Item::scalar(Value::Bytes(b.to_vec())));
                Ok(())
            }
            (b'S', Arg::Line(l)) => unquote_string(l).map(|b| {
                pushed_string = Some(b.clone());
                m.push(Item::scalar(Value::Bytes(b)));
            }),
            // Unicode strings: SHORT_BINUNICODE BINUNICODE BINUNICODE8 (UTF-8) and UNICODE
            // (raw-unicode-escape).
            (0x8c | b'X' | 0x8d, Arg::Bytes(b)) => match std::str::from_utf8(b) {
                Ok(t) => {
                    if code != 0x8d {
                        pushed_string = Some(b.to_vec());
                    }
                    m.push(Item::scalar(Value::String(t.to_string())));
                    Ok(())
                }
                Err(_) => Err("holds a unicode string that is not UTF-8".into()),
            },
            (b'V', Arg::Line(l)) => raw_unicode_unescape(l).map(|t| {
                pushed_string = Some(t.as_bytes().to_vec());
                m.push(Item::scalar(Value::String(t)));
            }),
            (b'c', Arg::Lines(module, name)) => {
                if !ALLOWED_GLOBALS.contains(&(module, name)) {
                    return refuse(format!(
                        "names the global `{}.{}` (GLOBAL), a callable Python would run",
                        String::from_utf8_lossy(module),
                        String::from_utf8_lossy(name)
                    ));
                }
                m.push(Item {
                    codecs_encode: true,
                    ..Item::scalar(Value::None)
                });
                Ok(())
            }
            // STACK_GLOBAL: module and name come from the stack (the two strings just pushed).
            (0x93, _) => {
                let named = match &last_strings {
                    [Some(module), Some(name)] => format!(
                        " `{}.{}`",
                        String::from_utf8_lossy(module),
                        String::from_utf8_lossy(name)
                    ),
                    _ => String::new(),
                };
                return refuse(format!(
                    "names the global{named} (STACK_GLOBAL), a callable Python would run"
                ));
            }
            (b'i', Arg::Lines(module, name)) => {
                return refuse(format!(
                    "instantiates `{}.{}` (INST)",
                    String::from_utf8_lossy(module),
                    String::from_utf8_lossy(name)
                ));
            }
            // REDUCE: only `_codecs.encode(text, 'latin1')`, Python 3's protocol-2 bytes.
            (b'R', _) => match (m.pop(), m.pop()) {
                (Ok(args), Ok(callable)) if callable.codecs_encode => {
                    codecs_encode(args.value).map(|b| m.push(Item::scalar(Value::Bytes(b))))
                }
                _ => {
                    return refuse(
                        "calls an object (REDUCE) that is no known data constructor".into(),
                    );
                }
            },
            (b'o', _) => return refuse("builds an object (OBJ)".into()),
            (0x81, _) => return refuse("builds an object (NEWOBJ)".into()),
            (0x92, _) => return refuse("builds an object (NEWOBJ_EX)".into()),
            (b'b', _) => return refuse("sets object state (BUILD)".into()),
            (b'P' | b'Q', _) => return refuse("refers to a persistent id (PERSID)".into()),
            (0x82..=0x84, _) => {
                return refuse("refers to an extension registry entry (EXT)".into());
            }
            (0x97 | 0x98, _) => return refuse("refers to out-of-band buffers".into()),
            _ => return refuse(format!("has an unknown opcode 0x{code:02x}")),
        };
        if let Err(what) = step {
            return refuse(what);
        }
        if let Some(s) = pushed_string {
            last_strings = [last_strings[1].take(), Some(s)];
        } else if !matches!(code, b'q' | b'r' | b'p' | 0x94) {
            // Memo stores keep the stack as it is; anything else breaks the "two strings" pattern.
            last_strings = [None, None];
        }
    }
}

/// `_codecs.encode(text, 'latin1')`: each character is one byte.
fn codecs_encode(args: Value) -> Result<Vec<u8>, String> {
    let bad = || "calls `_codecs.encode` with arguments other than (text, 'latin1')".to_string();
    let Value::Tuple(args) = args else {
        return Err(bad());
    };
    match args.as_slice() {
        [Value::String(text), Value::String(enc)] if enc == "latin1" || enc == "latin-1" => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).map_err(|_| bad()))
            .collect(),
        _ => Err(bad()),
    }
}

/// A little-endian unsigned integer of up to 8 bytes.
fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << (8 * i)))
}

/// LONG1/LONG4's little-endian two's complement of up to 8 bytes.
fn long_le(bytes: &[u8]) -> i64 {
    if bytes.is_empty() {
        return 0;
    }
    let unsigned = le(bytes);
    let bits = 8 * bytes.len() as u32;
    if bits < 64 && bytes[bytes.len() - 1] & 0x80 != 0 {
        (unsigned as i64) - (1i64 << bits)
    } else {
        unsigned as i64
    }
}

/// Protocol 0's INT (`I01`/`I00` are True/False) and LONG (`123L`).
fn text_int(code: u8, line: &[u8]) -> Result<Value, String> {
    if line.len() > MAX_INT_CHARS {
        return Err(format!(
            "holds an integer written in {} characters (limit {MAX_INT_CHARS}: no field of a refs file needs more than 64 bits)",
            line.len()
        ));
    }
    match (code, line) {
        (b'I', b"01") => return Ok(Value::Bool(true)),
        (b'I', b"00") => return Ok(Value::Bool(false)),
        _ => {}
    }
    let text = std::str::from_utf8(line).unwrap_or("");
    let text = if code == b'L' {
        text.strip_suffix('L').unwrap_or(text)
    } else {
        text
    };
    text.parse::<i64>()
        .map(Value::I64)
        .map_err(|_| "holds an integer that is not a 64-bit number".into())
}

/// Protocol 0's STRING: a Python 2 `repr` of a byte string, quoted, with backslash escapes.
fn unquote_string(line: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "holds a STRING that is not a quoted literal".to_string();
    let inner = match line {
        [q, inner @ .., q2] if (*q == b'\'' || *q == b'"') && q == q2 => inner,
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter().copied();
    while let Some(c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match it.next().ok_or_else(bad)? {
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hex = [it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Protocol 0's UNICODE: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, other bytes Latin-1).
fn raw_unicode_unescape(line: &[u8]) -> Result<String, String> {
    let bad = || "holds a UNICODE string with a broken escape".to_string();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        let digits = match (c, line.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        if digits == 0 {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = line.get(i + 2..i + 2 + digits).ok_or_else(bad)?;
        let code = u32::from_str_radix(std::str::from_utf8(hex).map_err(|_| bad())?, 16)
            .map_err(|_| bad())?;
        out.push(char::from_u32(code).ok_or_else(bad)?);
        i += 2 + digits;
    }
    Ok(out)
}

fn parse_decimal(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(n)?;
    let s = data.get(*pos..end)?;
    *pos = end;
    Some(s)
}

fn read_line<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = data.get(*pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    *pos += nl + 1;
    Some(&rest[..nl])
}

/// A little-endian unsigned integer of `width` bytes.
fn read_le(data: &[u8], pos: &mut usize, width: usize) -> Option<u64> {
    take(data, pos, width).map(le)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_pickle_value(p: &[u8]) -> Value {
        serde_pickle::value_from_slice(p, serde_pickle::DeOptions::new()).unwrap()
    }

    #[test]
    fn plain_data_parses_as_serde_pickle_reads_it() {
        // [{'a': 1}] at protocol 2, bytes key: PROTO 2, EMPTY_LIST, BINPUT 0, EMPTY_DICT, BINPUT 1,
        // SHORT_BINSTRING 'a', BINPUT 2, BININT1 1, SETITEM, APPEND, STOP.
        let p = b"\x80\x02]q\x00}q\x01U\x01aq\x02K\x01sa.";
        assert_eq!(parse(p).unwrap(), serde_pickle_value(p));
    }

    #[test]
    fn the_bundled_samples_refs_parse_as_serde_pickle_reads_them() {
        let p = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sample/refcocog/annotations/refs(umd).p"
        ))
        .unwrap();
        assert_eq!(parse(&p).unwrap(), serde_pickle_value(&p));
    }

    #[test]
    fn integers_of_every_encoding() {
        // LONG1 of -1 (0xff), of 2^31 (5 bytes), BININT of -2, text INT and LONG, True via I01.
        let p = b"\x80\x02(\x8a\x01\xff\x8a\x05\x00\x00\x00\x80\x00J\xfe\xff\xff\xffI-7\nL123L\nI01\nl.";
        let want = Value::List(vec![
            Value::I64(-1),
            Value::I64(1 << 31),
            Value::I64(-2),
            Value::I64(-7),
            Value::I64(123),
            Value::Bool(true),
        ]);
        assert_eq!(parse(p).unwrap(), want);
    }

    #[test]
    fn global_is_refused_and_named() {
        let p = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
        let err = parse(p).unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.what.contains("`posix.system`"), "{}", err.what);
    }

    #[test]
    fn stack_global_names_the_two_strings() {
        let p = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94.";
        let err = parse(p).unwrap_err();
        assert!(
            err.what.contains("`os.system` (STACK_GLOBAL)"),
            "{}",
            err.what
        );
    }

    #[test]
    fn string_contents_are_not_opcodes() {
        // A SHORT_BINSTRING whose bytes spell GLOBAL is data, not an opcode.
        let p = b"\x80\x02U\x0ecposix\nsystem\n.";
        assert_eq!(
            parse(p).unwrap(),
            Value::Bytes(b"cposix\nsystem\n".to_vec())
        );
    }

    #[test]
    fn truncated_and_unterminated_streams_are_refused() {
        assert!(parse(b"\x80\x02U\x05ab").is_err());
        assert!(parse(b"\x80\x02]").is_err());
        assert!(parse(b"\x80\x02T\xff\xff\xff\xffab.").is_err());
    }

    #[test]
    fn python3_bytes_via_codecs_encode_pass() {
        // pickle.dumps(b'ab', protocol=2) in Python 3.11.
        let p = b"\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00abq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
        assert_eq!(parse(p).unwrap(), Value::Bytes(b"ab".to_vec()));
        assert_eq!(serde_pickle_value(p), Value::Bytes(b"ab".to_vec()));
        // The global as data (in a list) is refused.
        let err = parse(b"\x80\x02]c_codecs\nencode\na.").unwrap_err();
        assert!(err.what.contains("as data"), "{}", err.what);
    }

    #[test]
    fn a_shared_list_holding_memoized_strings_is_read_twice() {
        // t = ['a', 'a']; [t, t] at protocol 2: the inner strings are memo references too, which
        // serde-pickle's parser consumed on the first visit of t.
        let p = b"\x80\x02]q\x00(]q\x01(X\x01\x00\x00\x00aq\x02h\x02eh\x01e.";
        let t = Value::List(vec![Value::String("a".into()), Value::String("a".into())]);
        assert_eq!(parse(p).unwrap(), Value::List(vec![t.clone(), t]));
        assert!(serde_pickle::value_from_slice(p, serde_pickle::DeOptions::new()).is_err());
    }

    #[test]
    fn shared_lists_expanding_exponentially_are_refused() {
        // l0 = ['x']; l(k+1) = [lk, lk] … 40 times: 2^40 values from a few hundred bytes.
        let mut p = b"\x80\x02]q\x00U\x01xa".to_vec();
        for k in 0u8..40 {
            p.extend([b']', b'q', k + 1, b'h', k, b'a', b'h', k, b'a']);
        }
        p.push(b'.');
        let err = parse(&p).unwrap_err();
        assert!(err.what.contains("expands to more than"), "{}", err.what);
    }
}
