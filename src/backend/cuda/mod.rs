//! The CUDA backend: a device handle, NVRTC-compiled kernels, cuBLAS/cuSOLVER handles.
//!
//! Everything goes through [`cudarc`] with `dynamic-loading`: `libcuda`, `libnvrtc`,
//! `libcublas` and `libcusolver` are opened at run time, so building needs no CUDA toolkit and
//! a machine without a GPU gets [`Error::BackendUnavailable`] from [`CudaDevice::new`] instead
//! of a link or load failure. Kernels are CUDA C compiled once per device by NVRTC for the
//! device's own architecture (`sm_XY` from its compute capability) and cached in the handle.
//!
//! Two workloads live here: [`gp::GpuExactGp`] (exact GP regression, RBF-ARD kernel, float64,
//! Cholesky through cuSOLVER) and [`belief::GpuGoalInference`] (the goal-inference particle
//! filter of [`crate::belief::GoalInference`], float32 particles with float64 reductions and
//! float64 prefix sums for resampling).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};

use crate::error::{Error, Result};

pub mod belief;
pub mod gp;

/// An open CUDA device: context, the stream all work is queued on, and compiled kernels.
///
/// Cheap to clone (shared handles). Work queued by objects built on the same device runs in
/// order on one stream.
#[derive(Clone)]
pub struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: String,
    name: String,
    modules: Arc<Mutex<HashMap<&'static str, Arc<CudaModule>>>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.ordinal)
            .field("name", &self.name)
            .field("arch", &self.arch)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(what: impl std::fmt::Display) -> Error {
    Error::BackendUnavailable(what.to_string())
}

/// Maps a CUDA driver/library failure during a computation to [`Error::Numerical`].
pub(crate) fn cuda_err(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| Error::Numerical {
        what,
        detail: format!("CUDA driver error: {e}"),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

impl CudaDevice {
    /// Opens CUDA device `ordinal`.
    ///
    /// # Errors
    /// [`Error::BackendUnavailable`] if `libcuda` or `libnvrtc` cannot be loaded, there is no
    /// such device, or the context cannot be created; the message says which.
    pub fn new(ordinal: usize) -> Result<Self> {
        // SAFETY: `is_culib_present` only tries `dlopen` on the candidate names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(unavailable(
                "the CUDA driver library (libcuda.so) was not found: no NVIDIA driver on this machine",
            ));
        }
        // SAFETY: as above.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(unavailable(
                "the NVRTC library (libnvrtc.so) was not found: install the CUDA runtime libraries",
            ));
        }
        let opened = catch_unwind(AssertUnwindSafe(|| {
            let n = CudaContext::device_count()
                .map_err(|e| unavailable(format!("cuInit/device count failed: {e}")))?;
            if ordinal >= usize::try_from(n).unwrap_or(0) {
                return Err(unavailable(format!(
                    "CUDA device {ordinal} requested, but {n} device(s) are present"
                )));
            }
            let ctx = CudaContext::new(ordinal).map_err(|e| {
                unavailable(format!("CUDA device {ordinal} could not be opened: {e}"))
            })?;
            let (ma, mi) = ctx
                .compute_capability()
                .map_err(|e| unavailable(format!("compute capability query failed: {e}")))?;
            let name = ctx.name().unwrap_or_else(|_| "unknown".into());
            Ok((ctx, ma, mi, name))
        }))
        .map_err(|p| {
            unavailable(format!(
                "CUDA initialisation failed: {}",
                panic_message(&*p)
            ))
        })?;
        let (ctx, ma, mi, name) = opened?;
        let stream = ctx.default_stream();
        Ok(Self {
            ordinal,
            stream,
            ctx,
            arch: format!("sm_{ma}{mi}"),
            name,
            modules: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The device ordinal.
    #[must_use]
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device name as the driver reports it (e.g. `NVIDIA H100 80GB HBM3`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The architecture kernels are compiled for (e.g. `sm_90`).
    #[must_use]
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Waits for all queued work.
    ///
    /// # Errors
    /// [`Error::Numerical`] if a queued kernel failed.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(cuda_err("synchronize"))
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Compiles (once per device) and returns `func` from the CUDA C module `src` named `key`.
    pub(crate) fn function(
        &self,
        key: &'static str,
        src: &str,
        func: &str,
    ) -> Result<CudaFunction> {
        let module = {
            let mut cache = self
                .modules
                .lock()
                .map_err(|_| Error::Internal("CUDA module cache poisoned".into()))?;
            if let Some(m) = cache.get(key) {
                m.clone()
            } else {
                let opts = cudarc::nvrtc::CompileOptions {
                    options: vec![
                        format!("--gpu-architecture={}", self.arch),
                        "-std=c++17".into(),
                    ],
                    ..Default::default()
                };
                let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| {
                    Error::Internal(format!("NVRTC failed to compile the `{key}` kernels: {e}"))
                })?;
                let m = self.ctx.load_module(ptx).map_err(|e| {
                    Error::Internal(format!("loading the `{key}` kernels failed: {e}"))
                })?;
                cache.insert(key, m.clone());
                m
            }
        };
        module
            .load_function(func)
            .map_err(|e| Error::Internal(format!("kernel `{func}` missing from `{key}`: {e}")))
    }

    /// Checks that cuBLAS and cuSOLVER can be loaded (needed by the GP).
    pub(crate) fn require_linalg(&self) -> Result<()> {
        // SAFETY: only `dlopen` attempts.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(unavailable("cuBLAS (libcublas.so) was not found"));
        }
        // SAFETY: as above.
        if !unsafe { cudarc::cusolver::sys::is_culib_present() } {
            return Err(unavailable("cuSOLVER (libcusolver.so) was not found"));
        }
        Ok(())
    }
}
