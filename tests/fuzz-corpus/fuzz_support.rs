//! A small mutation fuzzer shared by the `fuzz_*` test targets (included with `#[path]`).
//!
//! Why not cargo-fuzz: it needs nightly and libFuzzer; this runs under stable `cargo test`,
//! offline, in a bounded time. It is not coverage-guided: it mutates a corpus of interesting
//! inputs (checked in under `tests/fuzz-corpus/`) with byte-level and token-level edits, and
//! checks every case for the three things a parser fed by an operator or a kernel must never do:
//!
//! - panic (each case runs under `catch_unwind`);
//! - hang: a watchdog aborts the process if one case runs longer than [`HANG_LIMIT`], after
//!   writing the input to `target/fuzz-failures/`; each case must also finish in
//!   [`Fuzz::case_limit`] (a slow case is a failure too);
//! - use unbounded memory: a counting global allocator records each case's peak, which must stay
//!   under [`Fuzz::mem_limit`] (proportional to the input), and refuses any allocation that
//!   would take the process past [`HARD_CAP`] (so a bug fails the test, not the machine).
//!
//! Budget: `LVSCTL_FUZZ_SECS` seconds per target (default [`DEFAULT_SECS`]), `LVSCTL_SOAK=1`
//! for [`SOAK_SECS`]; `LVSCTL_FUZZ_SEED` replays a seed. A failing input is saved under
//! `target/fuzz-failures/` and the panic says where; add it to the corpus once fixed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const DEFAULT_SECS: u64 = 8;
pub const SOAK_SECS: u64 = 300;
/// One case running this long is a hang: the process is aborted.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);
/// No test process of ours needs more; an allocation past it is refused.
pub const HARD_CAP: usize = 3 << 30;

// ---------------------------------------------------------------------------------------
// Memory accounting

pub struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicBool = AtomicBool::new(false);

// SAFETY: every method forwards to `System` with the caller's layout and pointer unchanged;
// the only addition is atomic bookkeeping, which neither allocates nor touches the memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as the trait requires, `layout` has a non-zero size; forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grow = new_size.saturating_sub(layout.size());
        if grow > 0 && !reserve(grow) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            CURRENT.fetch_sub(grow, Ordering::Relaxed);
        } else if new_size < layout.size() {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Counts `size` more bytes in use, or refuses when that would pass [`HARD_CAP`].
fn reserve(size: usize) -> bool {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    if now > HARD_CAP {
        CURRENT.fetch_sub(size, Ordering::Relaxed);
        REFUSED.store(true, Ordering::Relaxed);
        return false;
    }
    PEAK.fetch_max(now, Ordering::Relaxed);
    true
}

/// One measured run: wall time and the most memory in use above the starting point.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub elapsed: Duration,
    pub peak_bytes: usize,
}

/// Serialises measurements, so one case's peak is not another test thread's.
static MEASURE: Mutex<()> = Mutex::new(());

/// Held for the whole of each fuzz test: the memory counter is process-wide, so another test
/// building its inputs at the same time would be counted against the case being measured.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// Call first in every test of a fuzz target.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The input being run, for the watchdog to save if it hangs.
static RUNNING: Mutex<Option<(String, Vec<u8>, Instant)>> = Mutex::new(None);
static WATCHDOG: std::sync::Once = std::sync::Once::new();

fn start_watchdog() {
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((target, input, since)) = running.as_ref()
                    && since.elapsed() > HANG_LIMIT
                {
                    let path = save_failure(target, input);
                    eprintln!(
                        "fuzz: {target}: one case ran for more than {HANG_LIMIT:?}: a hang; \
                         input saved to {}",
                        path.display()
                    );
                    std::process::abort();
                }
            }
        });
    });
}

/// Runs `f` on `input` under every check; `Err` says which limit broke (the panic message for
/// a panic).
pub fn measure(target: &str, input: &[u8], f: &dyn Fn(&[u8])) -> Result<Measured, String> {
    start_watchdog();
    let _one_at_a_time = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((target.to_owned(), input.to_vec(), Instant::now()));
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    REFUSED.store(false, Ordering::Relaxed);
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| f(input)));
    let elapsed = start.elapsed();
    let peak_bytes = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = None;
    if REFUSED.load(Ordering::Relaxed) {
        return Err(format!(
            "an allocation would have taken the process past {} MiB",
            HARD_CAP >> 20
        ));
    }
    match r {
        Ok(()) => Ok(Measured {
            elapsed,
            peak_bytes,
        }),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("panicked: {msg}"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inputs

/// splitmix64: tiny, fast, and the same sequence everywhere for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Applies 1..=`max_edits` random edits to a copy of `seed`: bit flips, byte sets, token
/// inserts and replacements, deletions, duplications, splices from `other`, truncation and
/// interesting integers (little- and big-endian).
pub fn mutate(
    rng: &mut Rng,
    seed: &[u8],
    other: &[u8],
    tokens: &[&[u8]],
    max_edits: usize,
    max_len: usize,
) -> Vec<u8> {
    const INTERESTING: &[u32] = &[
        0,
        1,
        2,
        3,
        4,
        7,
        8,
        15,
        16,
        17,
        20,
        127,
        128,
        255,
        256,
        4095,
        4096,
        32767,
        32768,
        65535,
        65536,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
    ];
    let mut b = seed.to_vec();
    let edits = 1 + rng.below(max_edits.max(1));
    for _ in 0..edits {
        let len = b.len();
        let at = rng.below(len + 1);
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next_u64() as u8;
            }
            2 | 3 => {
                let t = rng.pick(tokens);
                b.splice(at..at, t.iter().copied());
            }
            4 if len > 0 => {
                // Replace a short run with a token.
                let end = (at + 1 + rng.below(8)).min(len);
                let t = rng.pick(tokens);
                b.splice(at.min(end)..end, t.iter().copied());
            }
            5 if len > 0 => {
                let end = (at + 1 + rng.below(32)).min(len);
                b.drain(at.min(end)..end);
            }
            6 if len > 0 => {
                // Duplicate a chunk, sometimes many times (growth, repetition).
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = b[start..end].to_vec();
                let times = if rng.below(8) == 0 {
                    1 + rng.below(200)
                } else {
                    1
                };
                for _ in 0..times {
                    b.splice(at..at, chunk.iter().copied());
                }
            }
            7 if !other.is_empty() => {
                // Splice: our head with the other input's tail.
                let from = rng.below(other.len());
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
            8 if len > 0 => {
                b.truncate(rng.below(len));
            }
            9 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = *rng.pick(INTERESTING);
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                if rng.below(2) == 0 {
                    b[i..i + 4].copy_from_slice(&bytes);
                } else {
                    b[i..i + 2].copy_from_slice(&bytes[..2]);
                }
            }
            _ => {
                let v = *rng.pick(INTERESTING);
                b.splice(at..at, v.to_string().into_bytes());
            }
        }
        b.truncate(max_len);
    }
    b
}

/// Every file under `dir` (sorted), as (name, bytes). `*.hex` files hold hex text (whitespace
/// and `#` comments ignored) and are returned decoded.
pub fn corpus(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_default())
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let bytes = if name.ends_with(".hex") {
                unhex(&String::from_utf8_lossy(&bytes))
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            } else {
                bytes
            };
            (name, bytes)
        })
        .collect()
}

pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|e| format!("bad hex {:?}: {e}", &digits[i..i + 2]))
        })
        .collect()
}

/// The repository's `target/fuzz-failures/` (or CARGO_TARGET_DIR's).
fn failures_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("fuzz-failures")
}

pub fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = failures_dir();
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let path = dir.join(format!("{target}-{h:016x}.bin"));
    let _ = std::fs::write(&path, input);
    path
}

// ---------------------------------------------------------------------------------------
// The loop

/// One fuzz target's limits and budget.
pub struct Fuzz {
    pub target: &'static str,
    /// Largest time one case may take.
    pub case_limit: Duration,
    /// Largest peak memory one case may use, given the input length.
    pub mem_limit: fn(usize) -> usize,
}

/// What a fuzz run did, for the figures.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: u64,
    pub slowest: Duration,
    pub peak_bytes: usize,
    pub largest_input: usize,
}

impl Fuzz {
    /// Checks one input against every limit; panics with the saved input's path on failure.
    pub fn check(
        &self,
        report: &mut Report,
        what: &str,
        input: &[u8],
        f: &dyn Fn(&[u8]),
    ) -> Measured {
        let r = measure(self.target, input, f).and_then(|m| {
            if m.elapsed > self.case_limit {
                Err(format!(
                    "took {:?}, more than the {:?} a case may take",
                    m.elapsed, self.case_limit
                ))
            } else if m.peak_bytes > (self.mem_limit)(input.len()) {
                Err(format!(
                    "used {} KiB at its peak, more than the {} KiB allowed for {} input bytes",
                    m.peak_bytes >> 10,
                    (self.mem_limit)(input.len()) >> 10,
                    input.len()
                ))
            } else {
                Ok(m)
            }
        });
        match r {
            Ok(m) => {
                report.cases += 1;
                report.slowest = report.slowest.max(m.elapsed);
                report.peak_bytes = report.peak_bytes.max(m.peak_bytes);
                report.largest_input = report.largest_input.max(input.len());
                m
            }
            Err(why) => {
                let path = save_failure(self.target, input);
                panic!(
                    "fuzz {}: {what}: {why}; input ({} bytes) saved to {}",
                    self.target,
                    input.len(),
                    path.display()
                );
            }
        }
    }

    /// Mutates `seeds` for the time budget, checking each case with `f`.
    pub fn run(
        &self,
        seeds: &[Vec<u8>],
        tokens: &[&[u8]],
        max_len: usize,
        f: &dyn Fn(&[u8]),
    ) -> Report {
        let secs = std::env::var("LVSCTL_FUZZ_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(
                if std::env::var_os("LVSCTL_SOAK").is_some_and(|v| v == "1") {
                    SOAK_SECS
                } else {
                    DEFAULT_SECS
                },
            );
        let seed = std::env::var("LVSCTL_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!(
            "fuzz {}: seed {seed} (replay with LVSCTL_FUZZ_SEED={seed})",
            self.target
        );
        let mut rng = Rng::new(seed);
        let mut report = Report::default();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let a = rng.pick(seeds);
            let b = rng.pick(seeds);
            let input = mutate(&mut rng, a, b, tokens, 8, max_len);
            self.check(&mut report, "a mutated input", &input, f);
        }
        report
    }
}
