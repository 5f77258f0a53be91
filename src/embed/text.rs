//! CLIP's text input: `clip.tokenize(sentence, context_length=77, truncate=...)` of openai/CLIP
//! (clip-anytorch 2.6.0, `clip/clip.py` and `clip/simple_tokenizer.py`).
//!
//! `SimpleTokenizer.encode` is `whitespace_clean(basic_clean(text)).lower()`, then the regex
//! split, then byte-level BPE per word. The BPE and OpenAI's vocabulary (the same
//! `bpe_simple_vocab_16e6.txt`, sha256 `67603cfd…` uncompressed / `924691ac…` as CLIP's `.gz`) come
//! from `instant-clip-tokenizer`, fed one word of CLIP's own split at a time, so that its different
//! special-marker spelling (`<start_of_text>`) never applies. `basic_clean` is `ftfy.fix_text`
//! then `html.unescape` twice; refaug reproduces the parts of ftfy 6.3 that change ordinary text
//! (NFC, curly quotes, Latin ligatures, full-width ASCII, control characters) and the common
//! HTML entities. Not reproduced: ftfy's mojibake repair (`fix_encoding`: text that was
//! UTF-8 decoded as Latin-1/Windows-1252, e.g. `cafÃ©`), its C1-control and
//! `restore_byte_a0` fixes, and named HTML references outside [`NAMED_ENTITIES`]; such
//! sentences are tokenized as they are.

use std::sync::OnceLock;

use instant_clip_tokenizer::Tokenizer;
use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// The context length of every CLIP model.
pub const CONTEXT_LENGTH: usize = 77;
/// `<|startoftext|>`.
pub const START_OF_TEXT: i64 = 49406;
/// `<|endoftext|>`.
pub const END_OF_TEXT: i64 = 49407;

/// A sentence that does not fit the context (`clip.tokenize`'s `RuntimeError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "sentence is {n_tokens} tokens long with start and end tokens, over CLIP's context of \
     {CONTEXT_LENGTH} (clip.tokenize raises; ask for truncation to cut it as truncate=True does)"
)]
pub struct TooLong {
    pub n_tokens: usize,
}

/// One sentence as the text encoder takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// `[SOT] + bpe + [EOT]`, zero-padded to [`CONTEXT_LENGTH`].
    pub ids: [i64; CONTEXT_LENGTH],
    /// Tokens before padding, SOT and EOT included.
    pub len: usize,
    /// The sentence was cut to fit (only with truncation asked for).
    pub truncated: bool,
}

/// The CLIP tokenizer (build once; building reads the 49k merges).
pub struct ClipTokenizer {
    bpe: Tokenizer,
    split: Regex,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer").finish_non_exhaustive()
    }
}

impl ClipTokenizer {
    /// The process's tokenizer, built on first use.
    pub fn shared() -> &'static ClipTokenizer {
        static T: OnceLock<ClipTokenizer> = OnceLock::new();
        T.get_or_init(ClipTokenizer::new)
    }

    fn new() -> ClipTokenizer {
        // `SimpleTokenizer.pat` (compiled with re.IGNORECASE; the text is lower-cased first, so the
        // flag changes nothing for these alternatives).
        let split = Regex::new(
            r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
        )
        .expect("CLIP's word pattern compiles");
        ClipTokenizer {
            bpe: Tokenizer::new(),
            split,
        }
    }

    /// `SimpleTokenizer.encode(text)`: the BPE ids without start and end tokens.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let text = whitespace_clean(&basic_clean(text)).to_lowercase();
        let mut out = Vec::new();
        let mut word_tokens = Vec::new();
        for word in self.split.find_iter(&text).map(|m| m.as_str()) {
            match word {
                // `SimpleTokenizer.cache` maps the markers to themselves, i.e. to their own ids.
                "<|startoftext|>" => out.push(START_OF_TEXT),
                "<|endoftext|>" => out.push(END_OF_TEXT),
                _ => {
                    word_tokens.clear();
                    self.bpe.encode(word, &mut word_tokens);
                    out.extend(word_tokens.iter().map(|t| i64::from(t.to_u16())));
                }
            }
        }
        out
    }

    /// `clip.tokenize(text, context_length=77, truncate=truncate)[0]`.
    pub fn tokenize(&self, text: &str, truncate: bool) -> Result<Tokens, TooLong> {
        let mut all = Vec::with_capacity(CONTEXT_LENGTH);
        all.push(START_OF_TEXT);
        all.extend(self.encode(text));
        all.push(END_OF_TEXT);
        let n_tokens = all.len();
        let truncated = n_tokens > CONTEXT_LENGTH;
        if truncated {
            if !truncate {
                return Err(TooLong { n_tokens });
            }
            all.truncate(CONTEXT_LENGTH);
            all[CONTEXT_LENGTH - 1] = END_OF_TEXT;
        }
        let mut ids = [0i64; CONTEXT_LENGTH];
        ids[..all.len()].copy_from_slice(&all);
        Ok(Tokens {
            ids,
            len: all.len(),
            truncated,
        })
    }
}

/// `basic_clean`: `ftfy.fix_text`, `html.unescape` twice, `strip()`.
fn basic_clean(text: &str) -> String {
    let fixed = fix_text(text);
    html_unescape(&html_unescape(&fixed)).trim().to_string()
}

/// `whitespace_clean`: runs of whitespace → one space, stripped.
fn whitespace_clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parts of `ftfy.fix_text` (ftfy 6.3, default `TextFixerConfig`) that change well-formed
/// text: `unescape_html="auto"` is left to the two `html.unescape` calls that follow (they
/// unescape everything anyway); `remove_control_chars`, `fix_latin_ligatures`,
/// `fix_character_width`, `uncurl_quotes`, then NFC.
fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // remove_control_chars (ftfy.chardata.CONTROL_CHARS): C0 except \t \n \f \r, DEL,
            // deprecated format characters, BOM, interlinear annotation characters.
            '\u{0}'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}' => {}
            // uncurl_quotes: SINGLE_QUOTE_RE [\u02bc\u2018-\u201b], DOUBLE_QUOTE_RE [\u201c-\u201f].
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => out.push('\''),
            '\u{201c}'..='\u{201f}' => out.push('"'),
            // fix_latin_ligatures (ftfy.chardata.LIGATURES).
            'Ĳ' => out.push_str("IJ"),
            'ĳ' => out.push_str("ij"),
            'ŉ' => out.push_str("ʼn"),
            'Ǳ' => out.push_str("DZ"),
            'ǲ' => out.push_str("Dz"),
            'ǳ' => out.push_str("dz"),
            'Ǆ' => out.push_str("DŽ"),
            'ǅ' => out.push_str("Dž"),
            'ǆ' => out.push_str("dž"),
            'Ǉ' => out.push_str("LJ"),
            'ǈ' => out.push_str("Lj"),
            'ǉ' => out.push_str("lj"),
            'Ǌ' => out.push_str("NJ"),
            'ǋ' => out.push_str("Nj"),
            'ǌ' => out.push_str("nj"),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' => out.push_str("ſt"),
            'ﬆ' => out.push_str("st"),
            // fix_character_width: full-width ASCII and the ideographic space (NFKC of those).
            '\u{ff01}'..='\u{ff5e}' => {
                out.push(char::from_u32(c as u32 - 0xfee0).expect("ASCII range"))
            }
            '\u{3000}' => out.push(' '),
            _ => out.push(c),
        }
    }
    out.nfc().collect()
}

/// `html.unescape` for numeric character references and the named ones in [`NAMED_ENTITIES`].
fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        match entity(tail) {
            Some((s, used)) => {
                out.push_str(&s);
                rest = &tail[used..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The replacement of the reference at the start of `tail` (just after `&`) and the bytes it used.
fn entity(tail: &str) -> Option<(String, usize)> {
    if let Some(num) = tail.strip_prefix('#') {
        let (radix, digits_at) = match num.as_bytes().first() {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits: String = tail[digits_at..]
            .chars()
            .take_while(|c| c.is_digit(radix))
            .collect();
        if digits.is_empty() {
            return None;
        }
        let mut used = digits_at + digits.len();
        if tail[used..].starts_with(';') {
            used += 1;
        }
        // Python: numbers outside Unicode or surrogates become U+FFFD.
        let c = u32::from_str_radix(&digits, radix)
            .ok()
            .and_then(char::from_u32)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{fffd}');
        return Some((c.to_string(), used));
    }
    // Longest name first, so that e.g. `&notin` is never read as `&not` + `in`.
    let mut best: Option<(String, usize)> = None;
    for &(name, s, legacy) in NAMED_ENTITIES {
        if let Some(after) = tail.strip_prefix(name) {
            let hit = if after.starts_with(';') {
                Some((s.to_string(), name.len() + 1))
            } else if legacy {
                Some((s.to_string(), name.len()))
            } else {
                None
            };
            if let Some(h) = hit
                && best.as_ref().is_none_or(|b| b.1 < h.1)
            {
                best = Some(h);
            }
        }
    }
    best
}

/// Named references `html.unescape` knows (Python's `html.entities.html5`), the subset refaug
/// replaces: the ASCII ones, all of Latin-1 (also valid without `;`, HTML5's legacy names) and
/// the typographic punctuation sentences may carry. `(name, text, valid without ';')`.
#[rustfmt::skip]
const NAMED_ENTITIES: &[(&str, &str, bool)] = &[
    ("amp", "&", true), ("lt", "<", true), ("gt", ">", true), ("quot", "\"", true), ("apos", "'", false),
    ("nbsp", "\u{a0}", true), ("iexcl", "¡", true), ("cent", "¢", true), ("pound", "£", true),
    ("curren", "¤", true), ("yen", "¥", true), ("brvbar", "¦", true), ("sect", "§", true),
    ("uml", "¨", true), ("copy", "©", true), ("ordf", "ª", true), ("laquo", "«", true),
    ("not", "¬", true), ("shy", "\u{ad}", true), ("reg", "®", true), ("macr", "¯", true),
    ("deg", "°", true), ("plusmn", "±", true), ("sup2", "²", true), ("sup3", "³", true),
    ("acute", "´", true), ("micro", "µ", true), ("para", "¶", true), ("middot", "·", true),
    ("cedil", "¸", true), ("sup1", "¹", true), ("ordm", "º", true), ("raquo", "»", true),
    ("frac14", "¼", true), ("frac12", "½", true), ("frac34", "¾", true), ("iquest", "¿", true),
    ("Agrave", "À", true), ("Aacute", "Á", true), ("Acirc", "Â", true), ("Atilde", "Ã", true),
    ("Auml", "Ä", true), ("Aring", "Å", true), ("AElig", "Æ", true), ("Ccedil", "Ç", true),
    ("Egrave", "È", true), ("Eacute", "É", true), ("Ecirc", "Ê", true), ("Euml", "Ë", true),
    ("Igrave", "Ì", true), ("Iacute", "Í", true), ("Icirc", "Î", true), ("Iuml", "Ï", true),
    ("ETH", "Ð", true), ("Ntilde", "Ñ", true), ("Ograve", "Ò", true), ("Oacute", "Ó", true),
    ("Ocirc", "Ô", true), ("Otilde", "Õ", true), ("Ouml", "Ö", true), ("times", "×", true),
    ("Oslash", "Ø", true), ("Ugrave", "Ù", true), ("Uacute", "Ú", true), ("Ucirc", "Û", true),
    ("Uuml", "Ü", true), ("Yacute", "Ý", true), ("THORN", "Þ", true), ("szlig", "ß", true),
    ("agrave", "à", true), ("aacute", "á", true), ("acirc", "â", true), ("atilde", "ã", true),
    ("auml", "ä", true), ("aring", "å", true), ("aelig", "æ", true), ("ccedil", "ç", true),
    ("egrave", "è", true), ("eacute", "é", true), ("ecirc", "ê", true), ("euml", "ë", true),
    ("igrave", "ì", true), ("iacute", "í", true), ("icirc", "î", true), ("iuml", "ï", true),
    ("eth", "ð", true), ("ntilde", "ñ", true), ("ograve", "ò", true), ("oacute", "ó", true),
    ("ocirc", "ô", true), ("otilde", "õ", true), ("ouml", "ö", true), ("divide", "÷", true),
    ("oslash", "ø", true), ("ugrave", "ù", true), ("uacute", "ú", true), ("ucirc", "û", true),
    ("uuml", "ü", true), ("yacute", "ý", true), ("thorn", "þ", true), ("yuml", "ÿ", true),
    ("ndash", "–", false), ("mdash", "—", false), ("lsquo", "‘", false), ("rsquo", "’", false),
    ("ldquo", "“", false), ("rdquo", "”", false), ("hellip", "…", false), ("bull", "•", false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_follows_ftfy_and_html() {
        assert_eq!(
            basic_clean("  it\u{2019}s a \u{fb01}ne &amp;amp; day "),
            "it's a fine & day"
        );
        assert_eq!(whitespace_clean(" a \t b\n\nc "), "a b c");
        assert_eq!(
            html_unescape("&#65;&#x42;&lt;x&gt &bogus;"),
            "AB<x> &bogus;"
        );
        // NFC: e + combining acute → é.
        assert_eq!(fix_text("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn too_long_is_an_error_unless_truncated() {
        let t = ClipTokenizer::shared();
        let long = "dog ".repeat(80);
        assert_eq!(t.tokenize(&long, false), Err(TooLong { n_tokens: 82 }));
        let cut = t.tokenize(&long, true).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.len, CONTEXT_LENGTH);
        assert_eq!(cut.ids[0], START_OF_TEXT);
        assert_eq!(cut.ids[CONTEXT_LENGTH - 1], END_OF_TEXT);
        // 75 words fit exactly: 1 + 75 + 1 = 77.
        assert!(t.tokenize(&"dog ".repeat(75), false).is_ok());
    }
}
