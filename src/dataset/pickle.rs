//! `refs(<split_by>).p`: a Python pickle (Python 2, protocol 2 in the distributed files) holding a
//! list of ref dicts.
//!
//! Two steps, so that nothing a pickle names is ever acted on:
//! 1. [`check_data_only`] walks the opcodes (the layout of CPython's `pickletools`, protocols 0–5)
//!    and refuses any that name a global or build an object (GLOBAL, STACK_GLOBAL, INST, OBJ,
//!    NEWOBJ, BUILD, persistent ids, extension codes). The one global allowed is
//!    `_codecs.encode`, which is how Python 3 writes a byte string at protocol ≤ 2;
//!    `serde-pickle` turns it back into the bytes without calling anything.
//!    The same walk keeps a model of the unpickler's stack, so that it can also refuse what would
//!    only hurt later: containers nested deeper than [`MAX_DEPTH`] (the decoder and `Drop` recurse
//!    once per level, and 10,000 levels fit in a 20 KB file), integers longer than
//!    [`MAX_INT_BYTES`] (big-integer parsing is quadratic), a shared container modified after it
//!    was fetched back from the memo (the one way to nest deeper than the stack model sees; Python's
//!    pickler never does it), and stack underflows.
//! 2. `serde-pickle` decodes the data into values, and each list entry into a [`WireRef`].
//!
//! Strings: Python 2 wrote `str` as byte strings (SHORT_BINSTRING/BINSTRING, which `serde-pickle`
//! keeps as bytes) and `unicode` as BINUNICODE. [`PyText`] accepts both; the reader then decodes
//! bytes as UTF-8 and reports invalid ones naming the ref and the field.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

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

/// Why [`check_data_only`] refused a pickle.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NotData {
    /// Byte offset of the opcode.
    pub offset: usize,
    /// What the opcode does, e.g. ``names the global `posix.system` (GLOBAL)``.
    pub what: String,
}

/// The globals a data pickle may name: pure data constructors that `serde-pickle` interprets itself.
const ALLOWED_GLOBALS: &[(&[u8], &[u8])] = &[(b"_codecs", b"encode")];

/// How deep containers may nest. A refs file nests five levels (the list → a ref dict → its
/// sentences list → a sentence dict → its tokens list); 100 leaves room for any data and none for
/// a stack overflow in the decoder.
pub(super) const MAX_DEPTH: u32 = 100;

/// The longest integer accepted, in bytes (LONG1/LONG4) or decimal digits ÷ 2 (INT/LONG text):
/// 128 bits. No field of a refs file needs more, and parsing a million-digit integer is quadratic.
pub(super) const MAX_INT_BYTES: usize = 16;

/// One value on the modelled unpickler stack: how deep its containers nest, which memo slot holds
/// it, and whether it was fetched back from the memo (a shared object).
#[derive(Debug, Clone, Copy)]
struct Item {
    depth: u32,
    memo: Option<u64>,
    fetched: bool,
}

const SCALAR: Item = Item {
    depth: 0,
    memo: None,
    fetched: false,
};

/// The unpickler's stack and memo as far as nesting goes (CPython's `_Unpickler` keeps the items
/// since the last MARK on `stack` and the older ones on `metastack`; one vector and the marks'
/// positions say the same).
#[derive(Default)]
struct StackModel {
    items: Vec<Item>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, u32>,
}

impl StackModel {
    fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    fn container(&mut self, children: &[Item]) -> Result<(), String> {
        let depth = children.iter().map(|c| c.depth).max().unwrap_or(0) + 1;
        check_depth(depth)?;
        self.push(Item { depth, ..SCALAR });
        Ok(())
    }

    fn pop(&mut self) -> Result<Item, String> {
        if self.items.len() <= self.marks.last().copied().unwrap_or(0) {
            return Err("pops a value from an empty stack".into());
        }
        Ok(self.items.pop().expect("checked above"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| "needs a MARK that was never set".to_string())?;
        Ok(self.items.split_off(mark))
    }

    /// Adds children to the container on top of the stack (APPEND, SETITEM, …).
    fn fill_top(&mut self, children: &[Item]) -> Result<(), String> {
        if self.items.len() <= self.marks.last().copied().unwrap_or(0) {
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
        if let Some(id) = top.memo {
            self.memo.insert(id, top.depth);
        }
        Ok(())
    }

    fn memoize(&mut self, id: u64) -> Result<(), String> {
        let top = self
            .items
            .last_mut()
            .ok_or_else(|| "memoizes a value from an empty stack".to_string())?;
        top.memo = Some(id);
        self.memo.insert(id, top.depth);
        Ok(())
    }

    fn fetch(&mut self, id: u64) -> Result<(), String> {
        let depth = *self
            .memo
            .get(&id)
            .ok_or_else(|| format!("fetches memo entry {id}, which was never stored"))?;
        self.push(Item {
            depth,
            memo: Some(id),
            fetched: true,
        });
        Ok(())
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

fn check_int_len(len: usize, what: &str) -> Result<(), String> {
    if len > MAX_INT_BYTES {
        return Err(format!(
            "holds an integer of {len} {what} (limit {MAX_INT_BYTES}; no field of a refs file needs more)"
        ));
    }
    Ok(())
}

/// Walks the opcodes of a pickle up to STOP and refuses the ones that name code or build objects,
/// and data nested or sized to hurt the decoder (see the module documentation).
/// Malformed streams (unknown opcode, truncated argument, stack underflow) are refused too, so that
/// the decoder only ever sees streams this walk understood.
pub(super) fn check_data_only(data: &[u8]) -> Result<(), NotData> {
    let mut pos = 0usize;
    let mut allowed_global_seen = false;
    let mut stack = StackModel::default();
    // The last two string literals pushed, to name what a STACK_GLOBAL would have looked up.
    let mut last_strings: [Option<Vec<u8>>; 2] = [None, None];
    loop {
        let offset = pos;
        let Some(&op) = data.get(pos) else {
            return Err(NotData {
                offset,
                what: "ends before its STOP opcode".into(),
            });
        };
        pos += 1;
        let refuse = |what: String| Err(NotData { offset, what });
        let truncated = || NotData {
            offset,
            what: format!("is truncated inside opcode 0x{op:02x}"),
        };
        let mut pushed_string: Option<Vec<u8>> = None;
        let modelled: Result<(), String> = match op {
            // STOP
            b'.' => return Ok(()),
            // MARK
            b'(' => {
                stack.marks.push(stack.items.len());
                Ok(())
            }
            // POP: the top item, or the MARK when nothing was pushed since (CPython's load_pop).
            b'0' => {
                if stack.items.len() > stack.marks.last().copied().unwrap_or(0) {
                    stack.pop().map(drop)
                } else {
                    stack.pop_mark().map(drop)
                }
            }
            // POP_MARK
            b'1' => stack.pop_mark().map(drop),
            // DUP: the same object twice, so a shared one.
            b'2' => match stack.items.last().copied() {
                Some(top) => {
                    stack.push(Item {
                        fetched: true,
                        ..top
                    });
                    Ok(())
                }
                None => Err("duplicates a value from an empty stack".into()),
            },
            // NONE NEWTRUE NEWFALSE
            b'N' | 0x88 | 0x89 => {
                stack.push(SCALAR);
                Ok(())
            }
            // EMPTY_TUPLE EMPTY_LIST EMPTY_DICT EMPTY_SET
            b')' | b']' | b'}' | 0x8f => stack.container(&[]),
            // APPEND
            b'a' => stack.pop().and_then(|child| stack.fill_top(&[child])),
            // APPENDS SETITEMS ADDITEMS
            b'e' | b'u' | 0x90 => stack
                .pop_mark()
                .and_then(|children| stack.fill_top(&children)),
            // SETITEM
            b's' => stack
                .pop()
                .and_then(|v| stack.pop().and_then(|k| stack.fill_top(&[k, v]))),
            // LIST TUPLE DICT FROZENSET
            b'l' | b't' | b'd' | 0x91 => stack
                .pop_mark()
                .and_then(|children| stack.container(&children)),
            // TUPLE1 TUPLE2 TUPLE3
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                (0..n)
                    .map(|_| stack.pop())
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|children| stack.container(&children))
            }
            // MEMOIZE: the next free memo slot.
            0x94 => stack.memoize(stack.memo.len() as u64),
            // Text arguments: FLOAT INT LONG STRING UNICODE GET PUT.
            b'F' | b'I' | b'L' | b'S' | b'V' | b'g' | b'p' => {
                let line = read_line(data, &mut pos).ok_or_else(truncated)?;
                match op {
                    b'g' | b'p' => match parse_decimal(line) {
                        Some(id) if op == b'g' => stack.fetch(id),
                        Some(id) => stack.memoize(id),
                        None => Err("has a memo index that is not a number".into()),
                    },
                    b'I' | b'L' => check_int_len(line.len().div_ceil(2), "digit pairs")
                        .map(|()| stack.push(SCALAR)),
                    _ => {
                        if matches!(op, b'S' | b'V') {
                            pushed_string = Some(line.to_vec());
                        }
                        stack.push(SCALAR);
                        Ok(())
                    }
                }
            }
            // PROTO (1 byte), FRAME (8 bytes): no stack effect.
            0x80 => skip(data, &mut pos, 1)
                .ok_or_else(truncated)
                .map(|()| Ok(()))?,
            0x95 => skip(data, &mut pos, 8)
                .ok_or_else(truncated)
                .map(|()| Ok(()))?,
            // BINGET LONG_BINGET BINPUT LONG_BINPUT
            b'h' | b'j' | b'q' | b'r' => {
                let width = if matches!(op, b'h' | b'q') { 1 } else { 4 };
                let id = read_le(data, &mut pos, width).ok_or_else(truncated)?;
                if matches!(op, b'h' | b'j') {
                    stack.fetch(id)
                } else {
                    stack.memoize(id)
                }
            }
            // BININT1 (1), BININT2 (2), BININT (4), BINFLOAT (8).
            b'K' | b'M' | b'J' | b'G' => {
                let width = match op {
                    b'K' => 1,
                    b'M' => 2,
                    b'J' => 4,
                    _ => 8,
                };
                skip(data, &mut pos, width).ok_or_else(truncated)?;
                stack.push(SCALAR);
                Ok(())
            }
            // LONG1 (u8 length), LONG4 (32-bit length).
            0x8a | 0x8b => {
                let width = if op == 0x8a { 1 } else { 4 };
                let len = read_le(data, &mut pos, width).ok_or_else(truncated)?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                match check_int_len(len, "bytes") {
                    Err(e) => Err(e),
                    Ok(()) => {
                        skip(data, &mut pos, len).ok_or_else(truncated)?;
                        stack.push(SCALAR);
                        Ok(())
                    }
                }
            }
            // Length-prefixed strings: SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE (u8),
            // BINSTRING BINUNICODE BINBYTES (32 bit), BINUNICODE8 BINBYTES8 BYTEARRAY8 (64 bit).
            b'U' | b'C' | 0x8c | b'T' | b'X' | b'B' | 0x8d | 0x8e | 0x96 => {
                let width = match op {
                    b'U' | b'C' | 0x8c => 1,
                    b'T' | b'X' | b'B' => 4,
                    _ => 8,
                };
                let s = read_prefixed(data, &mut pos, width).ok_or_else(truncated)?;
                if width < 8 {
                    pushed_string = Some(s.to_vec());
                }
                stack.push(SCALAR);
                Ok(())
            }
            // GLOBAL module\nname\n
            b'c' => {
                let module = read_line(data, &mut pos).ok_or_else(truncated)?;
                let name = read_line(data, &mut pos).ok_or_else(truncated)?;
                if ALLOWED_GLOBALS.contains(&(module, name)) {
                    allowed_global_seen = true;
                } else {
                    return refuse(format!(
                        "names the global `{}.{}` (GLOBAL), a callable Python would run",
                        String::from_utf8_lossy(module),
                        String::from_utf8_lossy(name)
                    ));
                }
                stack.push(SCALAR);
                Ok(())
            }
            // STACK_GLOBAL: module and name come from the stack (the two strings just pushed).
            0x93 => {
                let named = match &last_strings {
                    [Some(m), Some(n)] => format!(
                        " `{}.{}`",
                        String::from_utf8_lossy(m),
                        String::from_utf8_lossy(n)
                    ),
                    _ => String::new(),
                };
                return refuse(format!(
                    "names the global{named} (STACK_GLOBAL), a callable Python would run"
                ));
            }
            // INST module\nname\n
            b'i' => {
                let module = read_line(data, &mut pos).ok_or_else(truncated)?;
                let name = read_line(data, &mut pos).ok_or_else(truncated)?;
                return refuse(format!(
                    "instantiates `{}.{}` (INST)",
                    String::from_utf8_lossy(module),
                    String::from_utf8_lossy(name)
                ));
            }
            b'R' if !allowed_global_seen => {
                return refuse("calls an object (REDUCE) that is no known data constructor".into());
            }
            // REDUCE of `_codecs.encode`: callable and arguments → the bytes.
            b'R' => stack
                .pop()
                .and_then(|_args| stack.pop())
                .map(|_callable| stack.push(SCALAR)),
            b'o' => return refuse("builds an object (OBJ)".into()),
            0x81 => return refuse("builds an object (NEWOBJ)".into()),
            0x92 => return refuse("builds an object (NEWOBJ_EX)".into()),
            b'b' => return refuse("sets object state (BUILD)".into()),
            b'P' | b'Q' => return refuse("refers to a persistent id (PERSID)".into()),
            0x82..=0x84 => return refuse("refers to an extension registry entry (EXT)".into()),
            0x97 | 0x98 => return refuse("refers to out-of-band buffers".into()),
            other => return refuse(format!("has an unknown opcode 0x{other:02x}")),
        };
        if let Err(what) = modelled {
            return refuse(what);
        }
        if let Some(s) = pushed_string {
            last_strings = [last_strings[1].take(), Some(s)];
        } else if !matches!(op, b'q' | b'r' | b'p' | 0x94) {
            // Memo stores keep the stack as it is; anything else breaks the "two strings" pattern.
            last_strings = [None, None];
        }
    }
}

fn parse_decimal(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// A little-endian unsigned integer of `width` bytes.
fn read_le(data: &[u8], pos: &mut usize, width: usize) -> Option<u64> {
    let bytes = data.get(*pos..pos.checked_add(width)?)?;
    *pos += width;
    Some(
        bytes
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << (8 * i))),
    )
}

fn skip(data: &[u8], pos: &mut usize, n: usize) -> Option<()> {
    let end = pos.checked_add(n)?;
    (end <= data.len()).then(|| *pos = end)
}

fn read_line<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = data.get(*pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    *pos += nl + 1;
    Some(&rest[..nl])
}

/// A little-endian length of `width` bytes, then that many bytes. BINSTRING's and LONG4's length
/// are signed, the others unsigned; a negative one reads as a huge length and fails the bound check.
fn read_prefixed<'a>(data: &'a [u8], pos: &mut usize, width: usize) -> Option<&'a [u8]> {
    let len = read_le(data, pos, width)?;
    let start = *pos;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    let s = data.get(start..end)?;
    *pos = end;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_data_passes() {
        // [{'a': 1}] at protocol 2, bytes key: PROTO 2, EMPTY_LIST, BINPUT 0, EMPTY_DICT, BINPUT 1,
        // SHORT_BINSTRING 'a', BINPUT 2, BININT1 1, SETITEM, APPEND, STOP.
        let p = b"\x80\x02]q\x00}q\x01U\x01aq\x02K\x01sa.";
        assert_eq!(check_data_only(p), Ok(()));
    }

    #[test]
    fn global_is_refused_and_named() {
        let p = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
        let err = check_data_only(p).unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.what.contains("`posix.system`"), "{}", err.what);
    }

    #[test]
    fn stack_global_names_the_two_strings() {
        let p = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94.";
        let err = check_data_only(p).unwrap_err();
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
        assert_eq!(check_data_only(p), Ok(()));
    }

    #[test]
    fn truncated_and_unterminated_streams_are_refused() {
        assert!(check_data_only(b"\x80\x02U\x05ab").is_err());
        assert!(check_data_only(b"\x80\x02]").is_err());
        assert!(check_data_only(b"\x80\x02T\xff\xff\xff\xffab.").is_err());
    }

    #[test]
    fn python3_bytes_via_codecs_encode_pass() {
        // pickle.dumps(b'ab', protocol=2) in Python 3.11.
        let p = b"\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00abq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
        assert_eq!(check_data_only(p), Ok(()));
        let v = serde_pickle::value_from_slice(p, serde_pickle::DeOptions::new()).unwrap();
        assert_eq!(v, serde_pickle::Value::Bytes(b"ab".to_vec()));
    }
}
