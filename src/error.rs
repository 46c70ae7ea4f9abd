//! The crate's one error type.
//!
//! Every public entry point validates its input and returns [`Error`] rather than panicking.
//! Solver *outcomes* (iteration limits, infeasibility, resampling events) are statuses carried in
//! results, not errors.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Broad class of an [`Error`], used by the bindings to pick an exception class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input from the caller: shapes, NaN/inf, settings out of range.
    InvalidInput,
    /// A numerical failure on valid input (e.g. a matrix that is not positive definite).
    Numerical,
    /// A requested compute backend is not compiled in or not present on this machine.
    BackendUnavailable,
    /// A bug inside the engine (a caught panic); please report it.
    Internal,
}

/// Errors returned by intent_engine.
///
/// Messages always name the argument or setting at fault, e.g.
/// `X2: expected 3 columns (the input dimension), got 2`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument has the wrong shape, length or is empty.
    #[error("{name}: {detail}")]
    Shape {
        /// The argument at fault.
        name: &'static str,
        /// What was expected and what was given.
        detail: String,
    },
    /// An argument contains NaN or an infinity.
    #[error("{name}: contains NaN or infinity (first at flat index {index})")]
    NonFinite {
        /// The argument at fault.
        name: &'static str,
        /// Flat (row-major) index of the first non-finite entry.
        index: usize,
    },
    /// A value or setting is out of its valid range.
    #[error("{name}: {detail}")]
    InvalidValue {
        /// The argument or setting at fault.
        name: &'static str,
        /// Why the value is rejected.
        detail: String,
    },
    /// A matrix that must be positive definite is not, even after the allowed jitter.
    #[error(
        "{what} is not positive definite (failed at pivot {pivot}, jitter tried up to {jitter:e})"
    )]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
        /// Index of the failing pivot.
        pivot: usize,
        /// Largest diagonal jitter that was tried.
        jitter: f64,
    },
    /// Another numerical failure on valid input.
    #[error("numerical failure in {what}: {detail}")]
    Numerical {
        /// The operation that failed.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The requested compute backend is unavailable.
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// An internal error (a caught panic). This is a bug; please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The broad class of this error.
    ///
    /// ```
    /// use intent_engine::{Error, ErrorKind};
    /// let e = Error::invalid_value("length_scale", "must be positive, got -1");
    /// assert_eq!(e.kind(), ErrorKind::InvalidInput);
    /// assert_eq!(e.to_string(), "length_scale: must be positive, got -1");
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Shape { .. } | Error::NonFinite { .. } | Error::InvalidValue { .. } => {
                ErrorKind::InvalidInput
            }
            Error::NotPositiveDefinite { .. } | Error::Numerical { .. } => ErrorKind::Numerical,
            Error::BackendUnavailable(_) => ErrorKind::BackendUnavailable,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(name: &'static str, detail: impl fmt::Display) -> Self {
        Error::Shape {
            name,
            detail: detail.to_string(),
        }
    }

    /// Shorthand for [`Error::InvalidValue`].
    pub fn invalid_value(name: &'static str, detail: impl fmt::Display) -> Self {
        Error::InvalidValue {
            name,
            detail: detail.to_string(),
        }
    }

    /// The same error with its argument name passed through `to` (e.g. a nested setting
    /// reported under its parent, or the core's name under a binding's); errors that name no
    /// argument are unchanged.
    pub(crate) fn renamed(self, to: impl FnOnce(&'static str) -> &'static str) -> Self {
        match self {
            Error::Shape { name, detail } => Error::Shape {
                name: to(name),
                detail,
            },
            Error::NonFinite { name, index } => Error::NonFinite {
                name: to(name),
                index,
            },
            Error::InvalidValue { name, detail } => Error::InvalidValue {
                name: to(name),
                detail,
            },
            other => other,
        }
    }
}

/// Returns an error naming `name` if any entry of `values` is NaN or infinite.
///
/// # Errors
/// [`Error::NonFinite`] with the flat index of the first offending entry.
pub fn check_finite<'a>(
    name: &'static str,
    values: impl IntoIterator<Item = &'a f64>,
) -> Result<()> {
    match values.into_iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite { name, index }),
        None => Ok(()),
    }
}

/// [`check_finite`] for an array view of any dimension: [`check_finite_slice`] when the view
/// is contiguous in standard order (the common case; ndarray's element iterator is slow),
/// the element iterator otherwise. The index is in logical (row-major) order either way.
///
/// # Errors
/// [`Error::NonFinite`] with the index of the first offending entry.
pub(crate) fn check_finite_view<D: ndarray::Dimension>(
    name: &'static str,
    values: ndarray::ArrayView<'_, f64, D>,
) -> Result<()> {
    match values.as_slice() {
        Some(s) => check_finite_slice(name, s),
        None => check_finite(name, values.iter()),
    }
}

/// [`check_finite`] for a slice, with a vectorised fast path: `Σ 0·x` (in eight independent
/// lanes) is NaN iff some `x` is NaN or infinite, so the common valid case is one SIMD pass and
/// only a failure pays for the index search.
///
/// # Errors
/// [`Error::NonFinite`] with the index of the first offending entry.
pub fn check_finite_slice(name: &'static str, values: &[f64]) -> Result<()> {
    let mut acc = [0.0f64; 8];
    let mut it = values.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            acc[k] += c[k] * 0.0;
        }
    }
    let mut t = acc.iter().sum::<f64>();
    for &x in it.remainder() {
        t += x * 0.0;
    }
    if t == 0.0 {
        Ok(())
    } else {
        check_finite(name, values)
    }
}

/// Returns an error naming `name` unless `value` is finite and strictly positive.
///
/// # Errors
/// [`Error::InvalidValue`] otherwise.
pub fn check_positive(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid_value(
            name,
            format_args!("must be positive and finite, got {value}"),
        ))
    }
}
