//! ONNX Runtime: finding and loading `libonnxruntime.so`, execution providers, session settings.
//!
//! refaug does not link ONNX Runtime; it loads the shared library of the pinned PyPI wheel
//! (`onnxruntime==1.31.1`, the version `ort` 2.0.0-rc.15 targets) at run time, once per process.
//! Where it looks, in order:
//!
//! 1. `ORT_DYLIB_PATH` (a file);
//! 2. the project-local environment made by `bash scripts/setup.sh`:
//!    `.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, under the current
//!    directory and under the crate's own directory;
//! 3. the `onnxruntime` package of the `python3` on `PATH`.

use std::ffi::{CStr, c_char, c_int};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::ep;
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

/// What a user has to run to get the library, quoted in every "not found" error.
const SETUP_HINT: &str = "run `bash scripts/setup.sh` (it installs onnxruntime==1.31.1 from \
scripts/python-requirements.txt into .venv), or set ORT_DYLIB_PATH to a libonnxruntime.so of \
version 1.31 or newer";

/// The ONNX Runtime name of the CUDA execution provider, as `GetAvailableProviders` lists it.
pub const CUDA_PROVIDER: &str = "CUDAExecutionProvider";

/// Errors of loading ONNX Runtime and creating sessions.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found (looked at: {}); {SETUP_HINT}", searched.join("; "))]
    NotFound { searched: Vec<String> },
    #[error("ORT_DYLIB_PATH={} does not name a file; {SETUP_HINT}", path.display())]
    DylibPathMissing { path: PathBuf },
    #[error("could not load ONNX Runtime from {}; {SETUP_HINT}", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: ort::LoadDynamicError,
    },
    #[error("could not read the version of the ONNX Runtime library {}: {detail}", path.display())]
    Version { path: PathBuf, detail: String },
    #[error("could not create the ONNX Runtime environment (library {})", path.display())]
    Environment {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error("ONNX Runtime environment initialisation failed earlier in this process: {0}")]
    EarlierFailure(String),
    #[error("could not list the execution providers of ONNX Runtime {}", path.display())]
    Providers {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error(
        "device {device} asked for, but the ONNX Runtime at {} offers only [{}]; install the \
         GPU build (onnxruntime-gpu==1.31.1) and point ORT_DYLIB_PATH at its libonnxruntime.so, \
         or use --device cpu",
        path.display(),
        providers.join(", ")
    )]
    CudaUnavailable {
        device: Device,
        path: PathBuf,
        providers: Vec<String>,
    },
    #[error("could not create an ONNX Runtime session for {} on {device}", model.display())]
    Session {
        model: PathBuf,
        device: Device,
        #[source]
        source: ort::Error,
    },
    #[error("invalid device `{0}`: expected `cpu`, `cuda` or `cuda:N`")]
    BadDevice(String),
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider on GPU `N` (`cuda` = `cuda:0`).
    Cuda(u32),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<u32>().ok())
                .map(Device::Cuda)
                .ok_or_else(|| RuntimeError::BadDevice(s.to_string())),
        }
    }
}

/// How one session runs: device, threads, batch size. These tune a run; what a detector *is*
/// lives in its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub device: Device,
    /// Intra-op threads of this session: [`SHARED_POOL`] (0) = none of its own: it runs on the
    /// process's shared pool, one thread per core, together with every other session that does;
    /// n > 0 = a pool of n threads of its own.
    ///
    /// Sessions side by side on the shared pool use all the cores between them whatever their
    /// costs: while one waits for input, the others get its cores. Own pools give each session a
    /// fixed slice, so a fast session that waits leaves its cores idle while the slow one runs on
    /// its own slice (measured in BENCHMARKS.md). The shared pool is ONNX Runtime's global
    /// (environment-level) intra-op pool with per-session threads disabled.
    pub intra_threads: usize,
    /// Let idle intra-op threads of an own pool spin before sleeping. Spinning lowers latency for
    /// one session alone but burns the cores other sessions and the decoders need; off by
    /// default. The shared pool never spins.
    pub spinning: bool,
    /// The most images per model call when the model has a dynamic batch axis.
    pub max_batch: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            device: Device::Cpu,
            intra_threads: 1,
            spinning: false,
            max_batch: 1,
        }
    }
}

/// [`RuntimeOptions::intra_threads`] for a session on the process's shared pool.
pub const SHARED_POOL: usize = 0;

/// The threads of the process's shared pool: one per core.
pub fn shared_pool_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Split `cores` among `sessions` side-by-side sessions with pools of their own: every session
/// gets at least one thread, the remainder goes to the first ones.
pub fn split_threads(cores: usize, sessions: usize) -> Vec<usize> {
    let base = cores / sessions.max(1);
    let extra = cores % sessions.max(1);
    (0..sessions)
        .map(|i| (base + usize::from(i < extra)).max(1))
        .collect()
}

/// How the library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LibrarySource {
    /// `ORT_DYLIB_PATH`.
    EnvVar,
    /// The project-local `.venv`.
    ProjectVenv,
    /// The `onnxruntime` package of the `python3` on `PATH`.
    Python,
}

impl fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibrarySource::EnvVar => "ORT_DYLIB_PATH",
            LibrarySource::ProjectVenv => "project .venv",
            LibrarySource::Python => "python3 onnxruntime package",
        })
    }
}

/// The loaded ONNX Runtime of this process.
pub struct Runtime {
    library: PathBuf,
    source: LibrarySource,
    version: String,
    providers: Vec<String>,
    env: Environment,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("source", &self.source)
            .field("version", &self.version)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises the first initialisation; remembers a failure so every later caller gets the same
/// answer (ONNX Runtime allows one environment per process, and a half-loaded library stays).
static INIT: Mutex<Option<String>> = Mutex::new(None);

/// The process's ONNX Runtime, loaded on first use.
pub fn runtime() -> Result<&'static Runtime, RuntimeError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let mut failed = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    if let Some(msg) = failed.as_ref() {
        return Err(RuntimeError::EarlierFailure(msg.clone()));
    }
    match Runtime::load() {
        Ok(rt) => Ok(RUNTIME.get_or_init(|| rt)),
        Err(e) => {
            // Only failures after the library was handed to `ort` are sticky; a library that was
            // not found can be installed and looked for again.
            if !matches!(
                e,
                RuntimeError::NotFound { .. } | RuntimeError::DylibPathMissing { .. }
            ) {
                *failed = Some(crate::error_chain(&e));
            }
            Err(e)
        }
    }
}

/// Find `libonnxruntime.so` without loading it.
pub fn find_library() -> Result<(PathBuf, LibrarySource), RuntimeError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        if !path.is_file() {
            return Err(RuntimeError::DylibPathMissing { path });
        }
        return Ok((absolute(&path), LibrarySource::EnvVar));
    }
    let mut searched = vec!["ORT_DYLIB_PATH (unset)".to_string()];
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if !roots.contains(&manifest) {
        roots.push(manifest);
    }
    for root in &roots {
        let venv_lib = root.join(".venv").join("lib");
        searched.push(format!(
            "{}/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*",
            venv_lib.display()
        ));
        if let Some(lib) = venv_library(&venv_lib) {
            return Ok((absolute(&lib), LibrarySource::ProjectVenv));
        }
    }
    searched.push("python3 -c 'import onnxruntime'".to_string());
    if let Some(lib) = python_library() {
        return Ok((absolute(&lib), LibrarySource::Python));
    }
    Err(RuntimeError::NotFound { searched })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, newest Python first.
fn venv_library(venv_lib: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = fs_err::read_dir(venv_lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"))
        })
        .collect();
    pythons.sort();
    pythons.reverse();
    pythons
        .iter()
        .find_map(|py| capi_library(&py.join("site-packages").join("onnxruntime").join("capi")))
}

/// The `libonnxruntime.so*` in an `onnxruntime/capi` folder (the wheel ships
/// `libonnxruntime.so.<version>`), preferring the plain name when present.
fn capi_library(capi: &Path) -> Option<PathBuf> {
    let plain = capi.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    let mut found: Vec<PathBuf> = fs_err::read_dir(capi)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so."))
                && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

fn python_library() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    capi_library(&Path::new(dir.trim()).join("capi"))
}

impl Runtime {
    fn load() -> Result<Runtime, RuntimeError> {
        let (library, source) = find_library()?;
        let version = library_version(&library)?;
        let builder = ort::init_from(&library).map_err(|source| RuntimeError::Load {
            path: library.clone(),
            source,
        })?;
        // The shared pool (see `RuntimeOptions::intra_threads`): one intra-op thread per core (the
        // thread calling `Run` counts as one, as in a session's own pool), no inter-op threads
        // (every session runs its graph sequentially), no spinning (the decoders need the cores).
        let pool = GlobalThreadPoolOptions::default()
            .with_intra_threads(shared_pool_threads())
            .and_then(|p| p.with_inter_threads(1))
            .and_then(|p| p.with_spin_control(false))
            .map_err(|source| RuntimeError::Environment {
                path: library.clone(),
                source,
            })?;
        let env = builder
            .with_name("refaug")
            .with_telemetry(false)
            .with_global_thread_pool(pool)
            .build()
            .map_err(|source| RuntimeError::Environment {
                path: library.clone(),
                source,
            })?;
        let providers = available_providers().map_err(|source| RuntimeError::Providers {
            path: library.clone(),
            source,
        })?;
        Ok(Runtime {
            library,
            source,
            version,
            providers,
            env,
        })
    }

    /// The path of the loaded `libonnxruntime.so`.
    pub fn library_path(&self) -> &Path {
        &self.library
    }

    /// How the library was found.
    pub fn library_source(&self) -> LibrarySource {
        self.source
    }

    /// The library's version string (`OrtGetApiBase()->GetVersionString()`), e.g. `1.31.1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The execution providers this build of ONNX Runtime offers (`GetAvailableProviders`).
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// A session for `model` with `opts`' device and threads.
    ///
    /// CUDA is registered with `error_on_failure`: a CUDA request that cannot be met is an error,
    /// never a silent CPU run. (Single operators that the CUDA provider lacks still run on the
    /// CPU provider inside a CUDA session; that is ONNX Runtime's normal graph partitioning.)
    pub fn session(&self, model: &Path, opts: &RuntimeOptions) -> Result<Session, RuntimeError> {
        if let Device::Cuda(_) = opts.device
            && !self.providers.iter().any(|p| p == CUDA_PROVIDER)
        {
            return Err(RuntimeError::CudaUnavailable {
                device: opts.device,
                path: self.library.clone(),
                providers: self.providers.clone(),
            });
        }
        self.build_session(model, opts)
            .map_err(|source| RuntimeError::Session {
                model: model.to_path_buf(),
                device: opts.device,
                source,
            })
    }

    fn build_session(&self, model: &Path, opts: &RuntimeOptions) -> ort::Result<Session> {
        // Sequential execution: a graph's operators run one after another, each parallel inside.
        let mut builder = Session::builder(&self.env)?.with_parallel_execution(false)?;
        if opts.intra_threads != SHARED_POOL {
            // Without this, `ort` disables the session's own threads since the environment has
            // the shared pool.
            builder = builder
                .with_independent_thread_pool()?
                .with_intra_threads(opts.intra_threads)?
                // The inter-op pool is unused; 1 keeps it from spawning threads that would
                // compete with the other sessions.
                .with_inter_threads(1)?
                .with_intra_op_spinning(opts.spinning)?;
        }
        if let Device::Cuda(n) = opts.device {
            let cuda = ep::CUDA::default()
                .with_device_id(n as i32)
                .build()
                .error_on_failure();
            builder = builder.with_execution_providers([cuda])?;
        }
        builder.commit_from_file(model)
    }
}

/// `OrtGetApiBase()->GetVersionString()` of the library at `path`. `ort` checks the version but
/// does not expose it, so the library is opened a second time (the loader returns the same
/// handle) just to ask.
fn library_version(path: &Path) -> Result<String, RuntimeError> {
    let err = |detail: String| RuntimeError::Version {
        path: path.to_path_buf(),
        detail,
    };
    // SAFETY: loading the ONNX Runtime library runs only its (side-effect free) initialisers;
    // `OrtGetApiBase` has the C signature declared by `ort_sys`, and `GetVersionString` returns a
    // pointer to a static NUL-terminated string.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| err(e.to_string()))?;
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").map_err(|e| err(e.to_string()))?;
        let base = get_base();
        if base.is_null() {
            return Err(err("OrtGetApiBase returned null".into()));
        }
        let v = ((*base).GetVersionString)();
        if v.is_null() {
            return Err(err("GetVersionString returned null".into()));
        }
        Ok(CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

/// `GetAvailableProviders`: the execution providers compiled into the loaded library.
fn available_providers() -> ort::Result<Vec<String>> {
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut n: c_int = 0;
    // SAFETY: the OrtApi contract: on success `list` holds `n` NUL-terminated strings, released
    // with `ReleaseAvailableProviders(list, n)`.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut list, &mut n);
        if !status.0.is_null() {
            let msg = CStr::from_ptr((api.GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (api.ReleaseStatus)(status.0);
            return Err(ort::Error::new(msg));
        }
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n.max(0) as usize {
            out.push(CStr::from_ptr(*list.add(i)).to_string_lossy().into_owned());
        }
        let _ = (api.ReleaseAvailableProviders)(list, n);
        Ok(out)
    }
}

/// A declared dimension: fixed size, or symbolic (`-1` in ONNX Runtime, with its name).
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) if s.is_empty() => f.write_str("?"),
            Dim::Symbolic(s) => write!(f, "{s}"),
        }
    }
}

/// A model input's or output's declared tensor type: element type and dims (what IO validation
/// of detectors and encoders checks).
pub struct Declared {
    pub ty: TensorElementType,
    pub dims: Vec<Dim>,
}

impl Declared {
    pub fn show(&self) -> String {
        format!(
            "{:?} [{}]",
            self.ty,
            self.dims
                .iter()
                .map(Dim::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// Dim `i` is fixed to `n`, or symbolic.
    pub fn fits(&self, i: usize, n: usize) -> bool {
        match &self.dims[i] {
            Dim::Fixed(m) => *m == n as i64,
            Dim::Symbolic(_) => true,
        }
    }
}

pub fn declared(name: &str, dtype: &ValueType) -> Result<Declared, String> {
    match dtype {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => Ok(Declared {
            ty: *ty,
            dims: shape
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if d >= 0 {
                        Dim::Fixed(d)
                    } else {
                        Dim::Symbolic(dimension_symbols.get(i).cloned().unwrap_or_default())
                    }
                })
                .collect(),
        }),
        other => Err(format!("`{name}` is not a tensor ({other:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parsing() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", "cuda:-1"] {
            let e = bad.parse::<Device>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn thread_split_covers_the_cores_without_zero() {
        assert_eq!(split_threads(16, 4), vec![4, 4, 4, 4]);
        assert_eq!(split_threads(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split_threads(2, 5), vec![1, 1, 1, 1, 1]);
        assert_eq!(split_threads(8, 1), vec![8]);
    }
}
