//! Compute-backend selection.
//!
//! Control-loop work stays on the CPU; large GP and particle workloads may run on an NVIDIA
//! GPU when the crate is built with the `gpu` feature (`cuda`: cudarc with run-time loading
//! of the CUDA driver, NVRTC, cuBLAS and cuSOLVER, so the build needs no CUDA toolkit).
//! Without the feature, or without a usable GPU, asking for CUDA returns
//! [`Error::BackendUnavailable`] with the reason, and [`Backend::auto`] falls back to the CPU.

use std::fmt;

use crate::error::{Error, Result};

#[cfg(feature = "gpu")]
pub mod cuda;

#[cfg(feature = "gpu")]
pub use cuda::CudaDevice;

/// Where large computations run.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// The CPU (SIMD + rayon). Always available.
    #[default]
    Cpu,
    /// A CUDA device (built with the `gpu` feature).
    #[cfg(feature = "gpu")]
    Cuda(CudaDevice),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Cpu => f.write_str("cpu"),
            #[cfg(feature = "gpu")]
            Backend::Cuda(d) => write!(f, "cuda:{}", d.ordinal()),
        }
    }
}

impl Backend {
    /// The CUDA device with the given ordinal.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if the crate was built without the `gpu` feature, the
    /// CUDA driver or NVRTC library cannot be loaded, or no device with that ordinal exists;
    /// the message says which.
    ///
    /// ```
    /// # fn main() {
    /// match intent_engine::Backend::cuda(0) {
    ///     Ok(b) => println!("using {b}"),
    ///     Err(e) => assert_eq!(e.kind(), intent_engine::ErrorKind::BackendUnavailable),
    /// }
    /// # }
    /// ```
    pub fn cuda(ordinal: usize) -> Result<Self> {
        #[cfg(feature = "gpu")]
        {
            CudaDevice::new(ordinal).map(Backend::Cuda)
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

    /// Whether this is the CPU backend.
    #[must_use]
    pub fn is_cpu(&self) -> bool {
        matches!(self, Backend::Cpu)
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

    /// Whether a CUDA device can be opened (a run-time probe; `false` without the `gpu`
    /// feature).
    #[must_use]
    pub fn cuda_available() -> bool {
        Self::cuda(0).is_ok()
    }

    /// Why CUDA is unavailable, or `None` if device 0 opens.
    #[must_use]
    pub fn cuda_unavailable_reason() -> Option<String> {
        Self::cuda(0).err().map(|e| e.to_string())
    }
}
