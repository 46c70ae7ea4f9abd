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
            Par::Rayon(0) => rayon::current_num_threads(),
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
    pub fn install<R: Send>(self, f: impl FnOnce() -> R + Send) -> R {
        match self {
            #[cfg(feature = "rayon")]
            Par::Rayon(k) if k > 1 => match pool(k) {
                Some(p) => p.install(f),
                None => f(),
            },
            _ => f(),
        }
    }
}

/// A crate-owned pool of `k` threads, built once per size and kept for the process lifetime.
#[cfg(feature = "rayon")]
fn pool(k: usize) -> Option<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = pools
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = guard.get(&k) {
        return Some(Arc::clone(p));
    }
    // A pool that cannot be built (thread limits) degrades to the caller's thread.
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .ok()?,
    );
    guard.insert(k, Arc::clone(&p));
    Some(p)
}
