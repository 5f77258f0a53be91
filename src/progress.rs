//! Progress and terminal output, behind one small trait: bars on a terminal (indicatif), periodic plain
//! lines on a non-terminal (CI, logs), nothing with `--quiet`. Everything goes to stderr; stdout is for data.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the pipeline tells the person watching.
pub trait Reporter: Send + Sync {
    /// The run starts: `images` to process, the variants, and images already done in earlier runs.
    fn start(&self, images: u64, variants: &[String], resumed: u64);
    /// `n` more images decoded (or failed to decode).
    fn decoded(&self, n: u64);
    /// `n` more images through `variant`'s detector.
    fn detected(&self, variant: &str, n: u64);
    /// A message that must be seen (a failed image, a committed shard in plain mode).
    fn note(&self, message: &str);
    fn finish(&self);
}

/// Chooses bars, plain lines or silence.
pub fn reporter(quiet: bool) -> Box<dyn Reporter> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
        Box::new(Bars::default())
    } else {
        Box::new(Plain::new(Duration::from_secs(10)))
    }
}

/// `--quiet`.
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: u64, _: &[String], _: u64) {}
    fn decoded(&self, _: u64) {}
    fn detected(&self, _: &str, _: u64) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

/// One bar per variant and one line for decoding.
#[derive(Default)]
pub struct Bars {
    state: Mutex<Option<BarsState>>,
}

struct BarsState {
    multi: MultiProgress,
    decode: ProgressBar,
    variants: Vec<(String, ProgressBar)>,
}

impl Reporter for Bars {
    fn start(&self, images: u64, variants: &[String], resumed: u64) {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let decode = multi.add(ProgressBar::new(images));
        decode.set_style(
            ProgressStyle::with_template("{prefix:>12} {pos}/{len} images, {per_sec}")
                .expect("valid template"),
        );
        decode.set_prefix("decode");
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} images  {per_sec}  ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> ");
        let bars = variants
            .iter()
            .map(|v| {
                let b = multi.add(ProgressBar::new(images));
                b.set_style(style.clone());
                b.set_prefix(v.clone());
                (v.clone(), b)
            })
            .collect();
        if resumed > 0 {
            let _ = multi.println(format!("resuming: {resumed} images already committed"));
        }
        *self.state.lock().expect("progress lock") = Some(BarsState {
            multi,
            decode,
            variants: bars,
        });
    }

    fn decoded(&self, n: u64) {
        if let Some(s) = &*self.state.lock().expect("progress lock") {
            s.decode.inc(n);
        }
    }

    fn detected(&self, variant: &str, n: u64) {
        if let Some(s) = &*self.state.lock().expect("progress lock")
            && let Some((_, b)) = s.variants.iter().find(|(v, _)| v == variant)
        {
            b.inc(n);
        }
    }

    fn note(&self, message: &str) {
        match &*self.state.lock().expect("progress lock") {
            Some(s) => {
                let _ = s.multi.println(message);
            }
            None => eprintln!("{message}"),
        }
    }

    fn finish(&self) {
        if let Some(s) = self.state.lock().expect("progress lock").take() {
            s.decode.finish();
            for (_, b) in s.variants {
                b.finish();
            }
        }
    }
}

/// Plain lines every `every`, for logs.
pub struct Plain {
    every: Duration,
    state: Mutex<PlainState>,
}

struct PlainState {
    started: Instant,
    last: Instant,
    total: u64,
    decoded: u64,
    detected: Vec<(String, u64)>,
}

impl Plain {
    pub fn new(every: Duration) -> Plain {
        let now = Instant::now();
        Plain {
            every,
            state: Mutex::new(PlainState {
                started: now,
                last: now,
                total: 0,
                decoded: 0,
                detected: vec![],
            }),
        }
    }

    fn maybe_print(&self, s: &mut PlainState, force: bool) {
        let now = Instant::now();
        if !force && now.duration_since(s.last) < self.every {
            return;
        }
        s.last = now;
        let secs = now.duration_since(s.started).as_secs_f64().max(1e-9);
        let variants: Vec<String> = s
            .detected
            .iter()
            .map(|(v, n)| format!("{v} {n}/{} ({:.1} img/s)", s.total, *n as f64 / secs))
            .collect();
        eprintln!(
            "progress: decoded {}/{}; {}",
            s.decoded,
            s.total,
            variants.join("; ")
        );
    }
}

impl Reporter for Plain {
    fn start(&self, images: u64, variants: &[String], resumed: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.total = images;
        s.detected = variants.iter().map(|v| (v.clone(), 0)).collect();
        eprintln!(
            "progress: {images} images to process, variants {}",
            variants.join(", ")
        );
        if resumed > 0 {
            eprintln!("progress: resuming, {resumed} images already done");
        }
    }

    fn decoded(&self, n: u64) {
        let mut s = self.state.lock().expect("progress lock");
        s.decoded += n;
        self.maybe_print(&mut s, false);
    }

    fn detected(&self, variant: &str, n: u64) {
        let mut s = self.state.lock().expect("progress lock");
        if let Some((_, c)) = s.detected.iter_mut().find(|(v, _)| v == variant) {
            *c += n;
        }
        self.maybe_print(&mut s, false);
    }

    fn note(&self, message: &str) {
        eprintln!("{message}");
    }

    fn finish(&self) {
        let mut s = self.state.lock().expect("progress lock");
        self.maybe_print(&mut s, true);
    }
}
