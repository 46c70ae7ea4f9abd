//! The battery's harness: every call runs under `catch_unwind`, so a panic becomes a recorded
//! failure naming the entry point instead of aborting the test; failures are collected and
//! reported together at the end.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use intent_engine::Error;

/// Collects the failures of one battery.
#[derive(Default)]
pub struct Battery {
    failures: Vec<String>,
    pub checks: usize,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

impl Battery {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failure.
    pub fn fail(&mut self, what: impl Into<String>) {
        self.failures.push(what.into());
    }

    /// Checks a condition.
    pub fn check(&mut self, entry: &str, ok: bool, detail: impl Debug) {
        self.checks += 1;
        if !ok {
            self.fail(format!("{entry}: {detail:?}"));
        }
    }

    /// Runs `f`, turning a panic into a failure naming `entry`.
    pub fn run<T>(&mut self, entry: &str, f: impl FnOnce() -> T) -> Option<T> {
        self.checks += 1;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Some(v),
            Err(p) => {
                self.fail(format!("{entry}: PANICKED: {}", panic_text(&*p)));
                None
            }
        }
    }

    /// `f` must return `Err` whose message names `arg` (case-insensitive substring; `a|b`
    /// accepts either).
    pub fn err<T: Debug>(&mut self, entry: &str, arg: &str, f: impl FnOnce() -> Result<T, Error>) {
        match self.run(entry, f) {
            None => {}
            Some(Ok(v)) => self.fail(format!(
                "{entry} [{arg}]: expected an error naming `{arg}`, got Ok({})",
                short(&v)
            )),
            Some(Err(e)) => {
                let msg = e.to_string();
                let low = msg.to_lowercase();
                if !arg.split('|').any(|a| low.contains(&a.to_lowercase())) {
                    self.fail(format!("{entry}: error does not name `{arg}`: {msg}"));
                }
            }
        }
    }

    /// `f` must not panic; its `Result` may be either (a status or an error, never a panic).
    pub fn no_panic<T>(&mut self, entry: &str, f: impl FnOnce() -> T) -> Option<T> {
        self.run(entry, f)
    }

    /// `f` must succeed.
    #[allow(dead_code)]
    pub fn ok<T>(&mut self, entry: &str, f: impl FnOnce() -> Result<T, Error>) -> Option<T> {
        match self.run(entry, f)? {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(format!("{entry}: unexpected error: {e}"));
                None
            }
        }
    }

    /// Panics with every recorded failure.
    pub fn finish(self, name: &str) {
        assert!(
            self.failures.is_empty(),
            "{name}: {} of {} checks failed:\n  {}",
            self.failures.len(),
            self.checks,
            self.failures.join("\n  ")
        );
        eprintln!("{name}: {} checks passed", self.checks);
    }
}

fn short(v: &impl Debug) -> String {
    let s = format!("{v:?}");
    if s.len() > 200 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(200).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// A state fingerprint: the object's `Debug` text (every field, including caches).
pub fn fingerprint(v: &impl Debug) -> String {
    format!("{v:?}")
}

/// The hostile scalars every numeric argument is fed.
pub const BAD_SCALARS: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
/// Finite but extreme magnitudes (must give an answer that is finite, or an error).
pub const EXTREME: [f64; 4] = [1e300, -1e300, 1e-300, -1e-300];
