//! Compute-backend selection.
//!
//! Control-loop work stays on the CPU; large GP and particle workloads may run on an NVIDIA
//! GPU through candle when the crate is built with the `gpu` feature (and `cuda` for the CUDA
//! kernels). Without it, asking for CUDA returns [`Error::BackendUnavailable`] with the reason,
//! and [`Backend::auto`] falls back to the CPU.

use std::fmt;

use crate::error::{Error, Result};

/// Where large computations run.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// The CPU (SIMD + rayon). Always available.
    #[default]
    Cpu,
    /// A CUDA device through candle.
    #[cfg(feature = "gpu")]
    Cuda(candle_core::Device),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Cpu => f.write_str("cpu"),
            #[cfg(feature = "gpu")]
            Backend::Cuda(_) => f.write_str("cuda"),
        }
    }
}

impl Backend {
    /// The CUDA device with the given ordinal.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if the crate was built without the `gpu`/`cuda` features
    /// or no usable device is present; the message says which.
    ///
    /// ```
    /// # #[cfg(not(feature = "cuda"))] {
    /// let err = intent_engine::Backend::cuda(0).unwrap_err();
    /// assert_eq!(err.kind(), intent_engine::ErrorKind::BackendUnavailable);
    /// # }
    /// ```
    pub fn cuda(ordinal: usize) -> Result<Self> {
        #[cfg(feature = "gpu")]
        {
            candle_core::Device::new_cuda(ordinal)
                .map(Backend::Cuda)
                .map_err(|e| {
                    Error::BackendUnavailable(format!(
                        "CUDA device {ordinal} could not be opened: {e}"
                    ))
                })
        }
        #[cfg(not(feature = "gpu"))]
        {
            Err(Error::BackendUnavailable(format!(
                "CUDA device {ordinal} requested, but intent_engine was built without the `gpu` feature"
            )))
        }
    }

    /// CUDA device 0 if available, otherwise the CPU.
    #[must_use]
    pub fn auto() -> Self {
        Self::cuda(0).unwrap_or(Backend::Cpu)
    }

    /// Parses `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `backend` for an unknown name; [`Error::BackendUnavailable`]
    /// when CUDA is requested but unavailable.
    ///
    /// ```
    /// use intent_engine::Backend;
    /// assert!(matches!(Backend::parse("cpu")?, Backend::Cpu));
    /// assert!(Backend::parse("tpu").is_err());
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(Backend::Cpu),
            "auto" => Ok(Self::auto()),
            "cuda" => Self::cuda(0),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Self::cuda(n),
                _ => Err(Error::invalid_value(
                    "backend",
                    format_args!(
                        "expected \"cpu\", \"cuda\", \"cuda:N\" or \"auto\", got {other:?}"
                    ),
                )),
            },
        }
    }

    /// Whether a CUDA device can be opened.
    #[must_use]
    pub fn cuda_available() -> bool {
        Self::cuda(0).is_ok()
    }
}
