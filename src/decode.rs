//! Decode: image file bytes → RGB pixels, byte-for-byte what Pillow's `Image.open(p).convert("RGB")` gives.
//!
//! JPEG goes through libjpeg-turbo's decoder (vendored by `mozjpeg-sys`, C code paths, which the
//! libjpeg-turbo project keeps bit-identical to its SIMD paths) with the settings Pillow 13.0's
//! `JpegDecode.c` uses: library defaults (ISLOW integer IDCT, fancy chroma upsampling), output colour
//! space chosen from the number of components exactly as `JpegImagePlugin.py` does:
//!
//! * 1 component → `L` (`JCS_GRAYSCALE`), then `convert("RGB")` replicates it to R = G = B;
//! * 3 components → `RGB` (`JCS_RGB`; libjpeg decides YCbCr vs RGB from the JFIF/Adobe markers);
//! * 4 components → `CMYK` read with raw mode `"CMYK;I"`: libjpeg outputs `JCS_CMYK` (converting
//!   YCCK when the Adobe marker says transform 2), Pillow *always* inverts the four bytes ("assume
//!   Adobe conventions", whatever the markers say), and `convert("RGB")` applies `cmyk2rgb`.
//!
//! EXIF orientation is **not** applied (neither does `Image.open(p).convert("RGB")`).
//!
//! Errors follow Pillow: libjpeg errors are fatal; libjpeg *warnings* (corrupt entropy data,
//! extraneous bytes) are ignored as Pillow ignores them, except running out of data before the last
//! scanline: Pillow's suspending source then raises "image file is truncated" (unless
//! `LOAD_TRUNCATED_IMAGES`), so a truncated file is an error here too, never a grey-filled image.
//!
//! Other formats (PNG) are decoded by the `image` crate and converted like Pillow's
//! `convert("RGB")`: alpha dropped without compositing, 16-bit samples reduced as Pillow's raw modes do.

use std::any::Any;
use std::cell::Cell;
use std::ffi::{CStr, c_int};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use mozjpeg_sys as jpeg;

/// `jpeg_read_header`'s return value for a tables-only datastream (jpeglib.h).
const JPEG_HEADER_TABLES_ONLY: c_int = 2;

/// The largest side accepted (the JPEG format's own limit).
pub const MAX_SIDE: u32 = 65535;
/// The largest pixel count accepted (2^28 ≈ 268 M pixels, ≈ 805 MB of RGB).
pub const MAX_PIXELS: u64 = 1 << 28;

/// The default largest image file read, in bytes. The largest COCO JPEG is under 1 MB and a
/// high-quality JPEG takes about 1 byte per pixel, so 64 MiB holds a ~64-megapixel photo; a
/// larger file named `.jpg` is far more likely a mistake (or a sparse file) than an image.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// What one image file may cost before a pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are refused before they are read.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Why an image file could not be decoded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file does not exist.
    #[error("{path}: image file not found")]
    Missing { path: PathBuf },
    /// The file exists but could not be read.
    #[error("{path}: cannot read image file: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file (a folder, a FIFO, a device such as `/dev/zero`, a socket): reading it
    /// could block forever or never end.
    #[error("{path}: not a regular file ({kind}); an image must be a plain file")]
    NotRegular { path: PathBuf, kind: &'static str },
    /// Larger than [`Limits::max_file_bytes`]; refused before reading.
    #[error(
        "{path}: image file is {bytes} bytes, over the limit of {limit} bytes \
         (raise it with --max-image-bytes if the file is real)"
    )]
    FileTooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    /// The header's dimensions differ from the ones the annotations give; found before decoding.
    #[error(
        "{path}: the image is {width}×{height} but the annotations say \
         {expected_width}×{expected_height}"
    )]
    WrongSize {
        path: PathBuf,
        width: u32,
        height: u32,
        expected_width: u32,
        expected_height: u32,
    },
    /// The file has zero bytes.
    #[error("{path}: image file is empty (0 bytes)")]
    Empty { path: PathBuf },
    /// The data ends before the image is complete.
    #[error("{path}: image file is truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    /// The decoder rejected the data.
    #[error("{path}: corrupt image data: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Not an image format (or variant) this decoder handles.
    #[error("{path}: unsupported image format: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    /// The header announces an image too large to allocate.
    #[error(
        "{path}: image dimensions {width}×{height} ({pixels} pixels) exceed the limit \
         (side ≤ {MAX_SIDE}, ≤ {MAX_PIXELS} pixels)",
        pixels = *width as u64 * *height as u64
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
    },
}

/// Read and decode one image file to RGB, exactly as Pillow 13.0's `Image.open(path).convert("RGB")`.
pub fn decode_file(path: &Path) -> Result<RgbImage, DecodeError> {
    decode_bytes(&read_file(path, &Limits::default())?, path)
}

/// [`decode_file`] for an image whose size is known (instances.json): a file whose header says
/// otherwise is refused before its pixels are allocated.
pub fn decode_file_expecting(
    path: &Path,
    (width, height): (u32, u32),
    limits: &Limits,
) -> Result<RgbImage, DecodeError> {
    let bytes = read_file(path, limits)?;
    decode_with(&bytes, path, Some((width, height)))
}

/// Reads an image file's bytes, refusing what is no plain file or larger than the limit before
/// reading. The file is opened non-blocking, so a FIFO put in place after the check cannot hang
/// the open, and its type and size are checked again on the open handle.
pub fn read_file(path: &Path, limits: &Limits) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let read_error = |source| read_error(path, source);
    // stat (following links) never blocks, whatever the file is.
    check_plain_file(path, &std::fs::metadata(path).map_err(read_error)?, limits)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    check_plain_file(path, &meta, limits)?;
    // The file may still grow while it is read: never read past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    Ok(bytes)
}

/// What [`read_file`] checks before reading, without reading: the file is there, a plain file,
/// not empty and not over the limit (`refaug inspect`'s quick check).
pub fn check_file(path: &Path, limits: &Limits) -> Result<(), DecodeError> {
    let meta = std::fs::metadata(path).map_err(|source| read_error(path, source))?;
    check_plain_file(path, &meta, limits)?;
    if meta.len() == 0 {
        return Err(DecodeError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// An I/O error on `path`: `Missing` when the file is not there.
fn read_error(path: &Path, source: std::io::Error) -> DecodeError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DecodeError::Missing {
            path: path.to_path_buf(),
        }
    } else {
        DecodeError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn check_plain_file(
    path: &Path,
    meta: &std::fs::Metadata,
    limits: &Limits,
) -> Result<(), DecodeError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "a folder"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(DecodeError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > limits.max_file_bytes {
        return Err(DecodeError::FileTooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
            limit: limits.max_file_bytes,
        });
    }
    Ok(())
}

/// Decode an image held in memory; `path` only names it in errors.
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<RgbImage, DecodeError> {
    decode_with(bytes, path, None)
}

fn decode_with(
    bytes: &[u8],
    path: &Path,
    expected: Option<(u32, u32)>,
) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            path: path.to_path_buf(),
        });
    }
    // The JPEG SOI marker followed by any marker: what Pillow's `_accept` checks (`\xFF\xD8\xFF`).
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes, expected).map_err(|e| e.at(path))
    } else {
        decode_other(bytes, path, expected)
    }
}

/// A decode failure before the file name is attached.
#[derive(Debug)]
enum Failure {
    Truncated(String),
    Corrupt(String),
    Unsupported(String),
    TooLarge(u32, u32),
    WrongSize((u32, u32), (u32, u32)),
}

impl Failure {
    fn at(self, path: &Path) -> DecodeError {
        let path = path.to_path_buf();
        match self {
            Failure::Truncated(reason) => DecodeError::Truncated { path, reason },
            Failure::Corrupt(reason) => DecodeError::Corrupt { path, reason },
            Failure::Unsupported(reason) => DecodeError::Unsupported { path, reason },
            Failure::TooLarge(width, height) => DecodeError::TooLarge {
                path,
                width,
                height,
            },
            Failure::WrongSize((width, height), (expected_width, expected_height)) => {
                DecodeError::WrongSize {
                    path,
                    width,
                    height,
                    expected_width,
                    expected_height,
                }
            }
        }
    }
}

/// The header's dimensions against the limits and, when known, the annotations' — before any
/// pixel buffer is allocated.
fn check_dimensions(width: u32, height: u32, expected: Option<(u32, u32)>) -> Result<(), Failure> {
    if let Some(e) = expected
        && e != (width, height)
    {
        return Err(Failure::WrongSize((width, height), e));
    }
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(Failure::TooLarge(width, height));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JPEG through libjpeg-turbo
// ---------------------------------------------------------------------------------------------

/// What libjpeg's error callbacks unwind with; caught by `catch_unwind` in [`decode_jpeg`].
struct LibjpegAbort {
    /// libjpeg's message code (`J_MESSAGE_CODE`).
    code: c_int,
    message: String,
}

/// Per-decode state reachable from the callbacks through `client_data`.
struct ClientState {
    /// Once every scanline is out, running out of data only means a missing EOI marker: Pillow
    /// (`JpegDecode.c`, state 4) then finishes anyway.
    eof_is_harmless: Cell<bool>,
}

/// libjpeg's `format_message` into a Rust string.
///
/// # Safety
/// `cinfo` must be a live libjpeg object whose `err` points to a `jpeg_error_mgr`.
unsafe fn libjpeg_message(cinfo: &mut jpeg::jpeg_common_struct) -> String {
    /// `format_message`'s C signature: the bindings declare the output buffer as `&[u8; 80]`,
    /// but libjpeg writes into it, so it is passed as the raw pointer C expects.
    type FormatMessage = unsafe extern "C-unwind" fn(&mut jpeg::jpeg_common_struct, *mut u8);
    let mut buffer = [0u8; 80];
    // SAFETY: `err` was set by `jpeg_std_error` and outlives `cinfo`; both function pointer types
    // have the same C ABI (a pointer argument); format_message writes at most JMSG_LENGTH_MAX
    // (80) bytes, NUL-terminated.
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            let format: FormatMessage = std::mem::transmute(format);
            format(cinfo, buffer.as_mut_ptr());
        }
    }
    CStr::from_bytes_until_nul(&buffer)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `error_exit`: libjpeg must not return from it; unwind to `catch_unwind` (the crate's
/// `unwinding` feature compiles libjpeg with `-fexceptions` and declares callbacks `C-unwind`).
/// `resume_unwind` skips the panic hook, so nothing is printed.
unsafe extern "C-unwind" fn error_exit(cinfo: &mut jpeg::jpeg_common_struct) {
    // SAFETY: called by libjpeg with its own live object.
    let message = unsafe { libjpeg_message(cinfo) };
    // SAFETY: `err` is valid for the object's lifetime.
    let code = unsafe { (*cinfo.err).msg_code };
    resume_unwind(Box::new(LibjpegAbort { code, message }));
}

/// `emit_message`: Pillow installs an `output_message` that prints nothing and keeps libjpeg's
/// default `emit_message`, so warnings never stop its decoding. The one exception is running
/// out of data, which Pillow's suspending data source reports as a truncated file.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut jpeg::jpeg_common_struct, msg_level: c_int) {
    if msg_level >= 0 {
        return; // trace messages
    }
    // SAFETY: `err` is valid; `client_data` points to the `ClientState` owned by `decode_jpeg`,
    // which outlives every libjpeg call.
    let (code, state) = unsafe {
        (
            (*cinfo.err).msg_code,
            &*(cinfo.client_data as *const ClientState),
        )
    };
    // SAFETY: as above.
    unsafe { (*cinfo.err).num_warnings += 1 };
    if code == jpeg::JWRN_JPEG_EOF as c_int && !state.eof_is_harmless.get() {
        // SAFETY: as above.
        let message = unsafe { libjpeg_message(cinfo) };
        resume_unwind(Box::new(LibjpegAbort { code, message }));
    }
}

unsafe extern "C-unwind" fn output_message(_cinfo: &mut jpeg::jpeg_common_struct) {}

/// Owns a libjpeg decompressor and its error manager at a fixed address; destroys it on drop, also
/// when a libjpeg error unwound through it.
struct Decompressor {
    cinfo: jpeg::jpeg_decompress_struct,
    err: jpeg::jpeg_error_mgr,
    state: ClientState,
    created: bool,
}

impl Decompressor {
    fn new() -> Box<Decompressor> {
        // SAFETY: both are plain C structs for which all-zero is the documented initial state
        // (libjpeg's examples `memset` them); `jpeg_std_error` fills the error manager.
        let mut d = Box::new(Decompressor {
            cinfo: unsafe { std::mem::zeroed() },
            err: unsafe { std::mem::zeroed() },
            state: ClientState {
                eof_is_harmless: Cell::new(false),
            },
            created: false,
        });
        // SAFETY: `d` is boxed, so `err` and `state` keep their addresses while `cinfo` points to them.
        unsafe {
            d.cinfo.common.err = jpeg::jpeg_std_error(&mut d.err);
        }
        d.err.error_exit = Some(error_exit);
        d.err.emit_message = Some(emit_message);
        d.err.output_message = Some(output_message);
        d.cinfo.common.client_data = &d.state as *const ClientState as *mut std::ffi::c_void;
        d
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        if self.created {
            // SAFETY: created by `jpeg_create_decompress`; destroy only frees its memory pools and
            // is the documented cleanup after an error_exit.
            unsafe { jpeg::jpeg_destroy_decompress(&mut self.cinfo) };
        }
    }
}

/// Which colour layout libjpeg hands back.
enum Layout {
    Gray,
    Rgb,
    /// Pillow's "CMYK;I": the bytes libjpeg outputs, to be inverted then `cmyk2rgb`-ed.
    CmykInverted,
}

fn decode_jpeg(bytes: &[u8], expected: Option<(u32, u32)>) -> Result<RgbImage, Failure> {
    let mut d = Decompressor::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        decode_jpeg_inner(&mut d, bytes, expected)
    }));
    match result {
        Ok(outcome) => outcome,
        // libjpeg refuses sides over 65500 itself (JERR_IMAGE_TOO_BIG) once the frame header is read.
        Err(payload) => Err(abort_to_failure(
            payload,
            (d.cinfo.image_width, d.cinfo.image_height),
        )),
    }
}

fn abort_to_failure(payload: Box<dyn Any + Send>, (width, height): (u32, u32)) -> Failure {
    match payload.downcast::<LibjpegAbort>() {
        Ok(abort) => {
            let LibjpegAbort { code, message } = *abort;
            if code == jpeg::JERR_IMAGE_TOO_BIG as c_int {
                Failure::TooLarge(width, height)
            } else if code == jpeg::JWRN_JPEG_EOF as c_int {
                Failure::Truncated(format!("{message} (libjpeg)"))
            } else if code == jpeg::JERR_NOT_COMPILED as c_int
                || code == jpeg::JERR_ARITH_NOTIMPL as c_int
                || code == jpeg::JERR_BAD_PRECISION as c_int
            {
                Failure::Unsupported(format!("{message} (libjpeg)"))
            } else {
                Failure::Corrupt(format!("{message} (libjpeg)"))
            }
        }
        // A panic that is not ours (a bug): let it continue.
        Err(other) => resume_unwind(other),
    }
}

fn decode_jpeg_inner(
    d: &mut Decompressor,
    bytes: &[u8],
    expected: Option<(u32, u32)>,
) -> Result<RgbImage, Failure> {
    // SAFETY (whole function): `d.cinfo` is initialised by `jpeg_create_decompress` before any
    // other call, libjpeg errors unwind out of these calls (caught by the caller, after which the
    // object is only destroyed), and `bytes` outlives the decompressor's use of it.
    unsafe {
        jpeg::jpeg_create_decompress(&mut d.cinfo);
        d.created = true;
        jpeg::jpeg_mem_src(&mut d.cinfo, bytes.as_ptr(), bytes.len() as _);

        // Pillow: `do { ok = jpeg_read_header(cinfo, FALSE); } while (ok == JPEG_HEADER_TABLES_ONLY);`
        // Each round consumes input and running out of data is fatal, so this terminates.
        loop {
            let ok = jpeg::jpeg_read_header(&mut d.cinfo, 0);
            if ok != JPEG_HEADER_TABLES_ONLY {
                break;
            }
        }
    }

    let (width, height) = (d.cinfo.image_width, d.cinfo.image_height);
    check_dimensions(width, height, expected)?;
    // Pillow's JpegImagePlugin.SOF refuses other layer counts before libjpeg sees them.
    let layout = match d.cinfo.num_components {
        1 => Layout::Gray,
        3 => Layout::Rgb,
        4 => Layout::CmykInverted,
        n => {
            return Err(Failure::Unsupported(format!(
                "JPEG with {n} components (Pillow handles 1, 3 or 4)"
            )));
        }
    };
    d.cinfo.out_color_space = match layout {
        Layout::Gray => jpeg::J_COLOR_SPACE::JCS_GRAYSCALE,
        Layout::Rgb => jpeg::J_COLOR_SPACE::JCS_RGB,
        Layout::CmykInverted => jpeg::J_COLOR_SPACE::JCS_CMYK,
    };

    // SAFETY: as above.
    unsafe {
        jpeg::jpeg_start_decompress(&mut d.cinfo);
    }
    let comps = d.cinfo.output_components as usize;
    let (out_w, out_h) = (
        d.cinfo.output_width as usize,
        d.cinfo.output_height as usize,
    );
    let stride = out_w * comps;
    let mut raw = vec![0u8; stride * out_h];
    let mut rows: Vec<*mut u8> = raw
        .chunks_exact_mut(stride)
        .map(|r| r.as_mut_ptr())
        .collect();
    while (d.cinfo.output_scanline as usize) < out_h {
        let next = d.cinfo.output_scanline as usize;
        // SAFETY: every row pointer addresses `stride` writable bytes of `raw`, which is not
        // otherwise touched until decoding ends.
        let got = unsafe {
            jpeg::jpeg_read_scanlines(
                &mut d.cinfo,
                rows[next..].as_mut_ptr(),
                (out_h - next) as jpeg::JDIMENSION,
            )
        };
        if got == 0 {
            return Err(Failure::Truncated(format!(
                "libjpeg returned no data at scanline {next} of {out_h}"
            )));
        }
    }
    d.state.eof_is_harmless.set(true);
    // SAFETY: as above.
    unsafe {
        jpeg::jpeg_finish_decompress(&mut d.cinfo);
    }

    let rgb = match layout {
        Layout::Rgb => raw,
        Layout::Gray => raw.iter().flat_map(|&v| [v, v, v]).collect(),
        Layout::CmykInverted => raw
            .chunks_exact(4)
            .flat_map(|p| {
                let [c, m, y, k] = [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]];
                let nk = 255 - k;
                [cmyk2rgb(c, nk), cmyk2rgb(m, nk), cmyk2rgb(y, nk)]
            })
            .collect(),
    };
    RgbImage::from_raw(out_w as u32, out_h as u32, rgb)
        .ok_or_else(|| Failure::Corrupt("decoded buffer has the wrong size".into()))
}

/// One channel of Pillow's `cmyk2rgb` (`Convert.c`): `nk − MULDIV255(ink, nk)` with
/// `nk = 255 − K` and `MULDIV255(a, b) = ((a·b + 128) >> 8 + a·b + 128) >> 8`, i.e. the ink
/// scaled by the black's complement, rounded, then subtracted.
fn cmyk2rgb(ink: u8, nk: u8) -> u8 {
    let t = ink as u32 * nk as u32 + 128;
    nk - (((t >> 8) + t) >> 8) as u8
}

// ---------------------------------------------------------------------------------------------
// Everything else through the `image` crate
// ---------------------------------------------------------------------------------------------

fn decode_other(
    bytes: &[u8],
    path: &Path,
    expected: Option<(u32, u32)>,
) -> Result<RgbImage, DecodeError> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Failure::Corrupt(e.to_string()).at(path))?;
    let Some(format) = reader.format() else {
        return Err(Failure::Unsupported("not a JPEG or PNG file".into()).at(path));
    };
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| image_failure(e).at(path))?;
    check_dimensions(width, height, expected).map_err(|f| f.at(path))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits(); // our own limit was checked above
    let decoded = reader.decode().map_err(|e| image_failure(e).at(path))?;
    Ok(to_rgb_like_pillow(decoded))
}

fn image_failure(e: image::ImageError) -> Failure {
    match e {
        image::ImageError::Unsupported(u) => Failure::Unsupported(u.to_string()),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Failure::Truncated(io.to_string())
        }
        other => Failure::Corrupt(other.to_string()),
    }
}

/// Pillow's `convert("RGB")` of what its plugins open: alpha is dropped (never composited);
/// 16-bit colour and grey+alpha keep the high byte (raw modes `RGB;16B`, `RGBA;16B`, `LA;16B`);
/// 16-bit grey opens as mode `I;16`, whose conversion clips to 255 instead of scaling.
fn to_rgb_like_pillow(img: DynamicImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let data: Vec<u8> = match img {
        DynamicImage::ImageRgb8(rgb) => return rgb,
        DynamicImage::ImageLuma16(l) => l
            .into_raw()
            .into_iter()
            .flat_map(|v| {
                let v = v.min(255) as u8;
                [v, v, v]
            })
            .collect(),
        DynamicImage::ImageLumaA16(la) => la
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| {
                let v = (p[0] >> 8) as u8;
                [v, v, v]
            })
            .collect(),
        DynamicImage::ImageRgb16(rgb) => {
            rgb.into_raw().into_iter().map(|v| (v >> 8) as u8).collect()
        }
        DynamicImage::ImageRgba16(rgba) => rgba
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        // 8-bit grey, grey+alpha, RGBA (and palettes, which the PNG decoder expands to these):
        // replicate grey / drop alpha, exactly what `to_rgb8` does for 8-bit inputs.
        other @ (DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgba8(_)) => return other.to_rgb8(),
        // Float images do not come out of the PNG or JPEG decoders.
        other => return other.to_rgb8(),
    };
    RgbImage::from_raw(w, h, data).expect("one RGB triple per pixel")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pillow 13.0 `Image.frombytes("CMYK", (1, 1), bytes([c, m, y, k])).convert("RGB")` for a few
    /// values (computed with Pillow 13.0; whole CMYK and YCCK JPEGs are checked against Pillow in
    /// tests/pixels.rs).
    #[test]
    fn cmyk2rgb_matches_pillow_samples() {
        // (C, M, Y, K) → (R, G, B)
        let cases = [
            ([0, 0, 0, 0], [255, 255, 255]),
            ([255, 255, 255, 255], [0, 0, 0]),
            ([10, 128, 200, 0], [245, 127, 55]),
            ([10, 128, 200, 100], [149, 77, 33]),
            ([1, 2, 3, 254], [1, 1, 1]),
        ];
        for (cmyk, rgb) in cases {
            let nk = 255 - cmyk[3];
            let got = [
                cmyk2rgb(cmyk[0], nk),
                cmyk2rgb(cmyk[1], nk),
                cmyk2rgb(cmyk[2], nk),
            ];
            assert_eq!(got, rgb, "CMYK {cmyk:?}");
        }
    }

    #[test]
    fn empty_and_unknown_bytes_are_named_errors() {
        let p = Path::new("dir/x.jpg");
        let e = decode_bytes(&[], p).unwrap_err();
        assert!(matches!(e, DecodeError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("dir/x.jpg"), "{e}");
        let e = decode_bytes(b"GIF89a not really", p).unwrap_err();
        assert!(matches!(e, DecodeError::Unsupported { .. }), "{e}");
    }

    #[test]
    fn dimension_limits() {
        assert!(check_dimensions(65535, 4096, None).is_ok());
        assert!(matches!(
            check_dimensions(65536, 1, None),
            Err(Failure::TooLarge(65536, 1))
        ));
        // 2^14 × 2^14 = 2^28 is the largest accepted square.
        assert!(check_dimensions(16384, 16384, None).is_ok());
        assert!(check_dimensions(16385, 16384, None).is_err());
    }
}
