//! Explicit parallelism, passed as an argument (the faer convention) rather than read from
//! the environment deep inside a kernel.

#[cfg(feature = "rayon")]
use std::collections::HashMap;
#[cfg(feature = "rayon")]
use std::sync::{Arc, Mutex, OnceLock};

/// How much parallelism a call may use.
///
/// Results never depend on the choice: parallel loops split work into fixed blocks whose
/// results are independent of the thread that computes them.
///
/// ```
/// use intent_engine::Par;
/// assert_eq!(Par::threads(1), Par::Seq);
/// assert_eq!(Par::threads(0), Par::Rayon(0));
/// assert_eq!(Par::threads(4).num_threads() >= 1, true);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Par {
    /// Run on the calling thread only.
    #[default]
    Seq,
    /// Run on a rayon pool: `Rayon(0)` is the global pool (all cores), `Rayon(k)` a pool of
    /// `k` threads owned by the crate. Without the `rayon` feature this runs sequentially.
    Rayon(usize),
}

impl Par {
    /// `threads == 1` is [`Par::Seq`]; anything else is [`Par::Rayon`] (0 = all cores).
    #[must_use]
    pub fn threads(threads: usize) -> Self {
        if threads == 1 {
            Par::Seq
        } else {
            Par::Rayon(threads)
        }
    }

    /// Number of threads this setting will use.
    #[must_use]
    pub fn num_threads(self) -> usize {
        match self {
            Par::Seq => 1,
            #[cfg(feature = "rayon")]
            Par::Rayon(0) => all_cores(),
            #[cfg(feature = "rayon")]
            Par::Rayon(k) => k,
            #[cfg(not(feature = "rayon"))]
            Par::Rayon(_) => 1,
        }
    }

    /// True when work should be split across threads.
    #[must_use]
    pub fn is_parallel(self) -> bool {
        self.num_threads() > 1
    }

    /// Runs `f` inside the thread pool this setting names, so that rayon iterators inside `f`
    /// use it.
    ///
    /// Every pool is the crate's own (`Rayon(0)` too: a pool of all cores, not rayon's global
    /// one) and belongs to one process: in a child made by `fork`, where none of the parent's
    /// pool threads exist, the first parallel call builds fresh pools instead of waiting
    /// forever on the parent's.
    pub fn install<R: Send>(self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            #[cfg(feature = "rayon")]
            Par::Rayon(_) if self.num_threads() > 1 => match pool(self.num_threads()) {
                Some(p) => p.install(f),
                None => f(),
            },
            _ => f(),
        }
    }
}

/// The number of cores this process may use (1 if unknown).
#[cfg(feature = "rayon")]
fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The crate's pools of one process, by size.
#[cfg(feature = "rayon")]
struct Pools {
    pid: u32,
    by_size: HashMap<usize, Arc<rayon::ThreadPool>>,
}

/// A crate-owned pool of `k` threads, built once per size and process and kept for the
/// process lifetime.
#[cfg(feature = "rayon")]
fn pool(k: usize) -> Option<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        Mutex::new(Pools {
            pid: std::process::id(),
            by_size: HashMap::new(),
        })
    });
    let mut guard = pools
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    if guard.pid != pid {
        // A forked child: the parent's pool threads were not copied, so a job sent to those
        // pools would never run. Leak them (dropping one would signal threads that do not
        // exist here) and build new pools for this process.
        guard.by_size.drain().for_each(|(_, p)| std::mem::forget(p));
        guard.pid = pid;
    }
    if let Some(p) = guard.by_size.get(&k) {
        return Some(Arc::clone(p));
    }
    // A pool that cannot be built (thread limits) degrades to the caller's thread.
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .ok()?,
    );
    guard.by_size.insert(k, Arc::clone(&p));
    Some(p)
}
