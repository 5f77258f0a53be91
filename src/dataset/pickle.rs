//! `refs(<split_by>).p`: a Python pickle (Python 2, protocol 2 in the distributed files) holding a
//! list of ref dicts.
//!
//! Two steps, so that nothing a pickle names is ever acted on:
//! 1. [`check_data_only`] walks the opcodes (the layout of CPython's `pickletools`, protocols 0–5)
//!    and refuses any that name a global or build an object (GLOBAL, STACK_GLOBAL, INST, OBJ,
//!    NEWOBJ, BUILD, persistent ids, extension codes). The one global allowed is
//!    `_codecs.encode`, which is how Python 3 writes a byte string at protocol ≤ 2;
//!    `serde-pickle` turns it back into the bytes without calling anything.
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

/// Walks the opcodes of a pickle up to STOP and refuses the ones that name code or build objects.
/// Malformed streams (unknown opcode, truncated argument) are refused too, so that the decoder
/// only ever sees streams this walk understood.
pub(super) fn check_data_only(data: &[u8]) -> Result<(), NotData> {
    let mut pos = 0usize;
    let mut allowed_global_seen = false;
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
        match op {
            // STOP
            b'.' => return Ok(()),
            // No argument: MARK POP POP_MARK DUP NONE APPEND DICT EMPTY_DICT APPENDS LIST
            // EMPTY_LIST SETITEM TUPLE EMPTY_TUPLE SETITEMS TUPLE1-3 NEWTRUE NEWFALSE EMPTY_SET
            // ADDITEMS FROZENSET MEMOIZE.
            b'('
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
            | 0x85..=0x89
            | 0x8f
            | 0x90
            | 0x91
            | 0x94 => {}
            // One newline-terminated argument: FLOAT INT LONG STRING UNICODE GET PUT.
            b'F' | b'I' | b'L' | b'S' | b'V' | b'g' | b'p' => {
                let line = read_line(data, &mut pos).ok_or_else(truncated)?;
                if matches!(op, b'S' | b'V') {
                    pushed_string = Some(line.to_vec());
                }
            }
            // Fixed-size arguments: BININT1 BINGET BINPUT PROTO (1), BININT2 (2), BININT
            // LONG_BINGET LONG_BINPUT (4), BINFLOAT FRAME (8).
            b'K' | b'h' | b'q' | 0x80 => skip(data, &mut pos, 1).ok_or_else(truncated)?,
            b'M' => skip(data, &mut pos, 2).ok_or_else(truncated)?,
            b'J' | b'j' | b'r' => skip(data, &mut pos, 4).ok_or_else(truncated)?,
            b'G' | 0x95 => skip(data, &mut pos, 8).ok_or_else(truncated)?,
            // Length-prefixed strings: SHORT_BINSTRING SHORT_BINBYTES SHORT_BINUNICODE LONG1 (u8),
            // BINSTRING BINUNICODE BINBYTES LONG4 (32 bit), BINUNICODE8 BINBYTES8 BYTEARRAY8 (64 bit).
            b'U' | b'C' | 0x8c | 0x8a => {
                let s = read_prefixed(data, &mut pos, 1).ok_or_else(truncated)?;
                if op != 0x8a {
                    pushed_string = Some(s.to_vec());
                }
            }
            b'T' | b'X' | b'B' | 0x8b => {
                let s = read_prefixed(data, &mut pos, 4).ok_or_else(truncated)?;
                if op != 0x8b {
                    pushed_string = Some(s.to_vec());
                }
            }
            0x8d | 0x8e | 0x96 => {
                read_prefixed(data, &mut pos, 8).ok_or_else(truncated)?;
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
            b'R' => {}
            b'o' => return refuse("builds an object (OBJ)".into()),
            0x81 => return refuse("builds an object (NEWOBJ)".into()),
            0x92 => return refuse("builds an object (NEWOBJ_EX)".into()),
            b'b' => return refuse("sets object state (BUILD)".into()),
            b'P' | b'Q' => return refuse("refers to a persistent id (PERSID)".into()),
            0x82..=0x84 => return refuse("refers to an extension registry entry (EXT)".into()),
            0x97 | 0x98 => return refuse("refers to out-of-band buffers".into()),
            other => return refuse(format!("has an unknown opcode 0x{other:02x}")),
        }
        if let Some(s) = pushed_string {
            last_strings = [last_strings[1].take(), Some(s)];
        } else if !matches!(op, b'q' | b'r' | b'p' | 0x94) {
            // Memo stores keep the stack as it is; anything else breaks the "two strings" pattern.
            last_strings = [None, None];
        }
    }
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
    let len_bytes = data.get(*pos..pos.checked_add(width)?)?;
    let mut len = 0u64;
    for (i, b) in len_bytes.iter().enumerate() {
        len |= u64::from(*b) << (8 * i);
    }
    let start = *pos + width;
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
