//! The stage-wise optimal-control QP that the structured solvers work on.
//!
//! ```text
//! minimise   Σ_{k<N} ( ½ x_kᵀQ_k x_k + u_kᵀS_k x_k + ½ u_kᵀR_k u_k + q_kᵀx_k + r_kᵀu_k )
//!            + ½ x_NᵀQ_N x_N + q_Nᵀx_N  + Σ soft penalties
//! subject to x_{k+1} = A_k x_k + B_k u_k + c_k          (k < N, x_0 given)
//!            u_lower_k ≤ u_k ≤ u_upper_k                 (k < N)
//!            x_lower_k ≤ x_k ≤ x_upper_k                 (1 ≤ k ≤ N)
//!            lower_k ≤ C_k x_k + D_k u_k ≤ upper_k       (general rows, 0 ≤ k ≤ N; D_N = 0)
//! ```
//! A soft general row may be violated by `v ≥ 0` at a cost `l1·v + ½·l2·v²` (an exact penalty
//! when `l1` exceeds the row's multiplier). Bounds may be ±∞ (absent).
//!
//! Every stage stores its own matrices (LTV); LTI problems repeat them. The struct is plain data
//! with public fields so that builders can overwrite per-stage rows (e.g. a moving keep-out
//! half-space) between solves without reallocating; [`OcpQp::validate`] checks it.

use ndarray::{Array1, Array2};

use crate::error::{check_finite, Error, Result};

/// General rows of one stage: `lower ≤ C x_k + D u_k ≤ upper`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageRows {
    /// State coefficients, shape `(rows, nx)`.
    pub c: Array2<f64>,
    /// Input coefficients, shape `(rows, nu)`; must be zero at the terminal stage.
    pub d: Array2<f64>,
    /// Lower bounds (`-∞` for none), length `rows`.
    pub lower: Array1<f64>,
    /// Upper bounds (`+∞` for none), length `rows`.
    pub upper: Array1<f64>,
    /// Whether each row is soft.
    pub soft: Vec<bool>,
    /// Linear (L1) penalty weight per row (used when soft), ≥ 0.
    pub soft_l1: Array1<f64>,
    /// Quadratic penalty weight per row (used when soft), ≥ 0.
    pub soft_l2: Array1<f64>,
}

impl StageRows {
    /// `rows` hard rows with zero coefficients and infinite bounds (inactive until filled in).
    pub fn new(rows: usize, nx: usize, nu: usize) -> Self {
        Self {
            c: Array2::zeros((rows, nx)),
            d: Array2::zeros((rows, nu)),
            lower: Array1::from_elem(rows, f64::NEG_INFINITY),
            upper: Array1::from_elem(rows, f64::INFINITY),
            soft: vec![false; rows],
            soft_l1: Array1::zeros(rows),
            soft_l2: Array1::zeros(rows),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lower.len()
    }

    /// Whether the stage has no general rows.
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty()
    }
}

/// A stage-wise OCP QP; see the [module documentation](self) for the problem it states.
#[derive(Clone, Debug, PartialEq)]
pub struct OcpQp {
    /// State dimension.
    pub nx: usize,
    /// Input dimension.
    pub nu: usize,
    /// Horizon N (number of inputs).
    pub horizon: usize,
    /// `A_k`, `N` matrices `(nx, nx)`.
    pub a: Vec<Array2<f64>>,
    /// `B_k`, `N` matrices `(nx, nu)`.
    pub b: Vec<Array2<f64>>,
    /// Affine dynamics terms `c_k`, `N` vectors of length `nx`.
    pub c: Vec<Array1<f64>>,
    /// `Q_k`, `N + 1` symmetric PSD matrices `(nx, nx)`; `Q_N` is the terminal cost.
    pub q: Vec<Array2<f64>>,
    /// `R_k`, `N` symmetric positive-definite matrices `(nu, nu)`.
    pub r: Vec<Array2<f64>>,
    /// Cross terms `S_k`, `N` matrices `(nu, nx)`.
    pub s: Vec<Array2<f64>>,
    /// Linear state costs `q_k`, `N + 1` vectors.
    pub q_lin: Vec<Array1<f64>>,
    /// Linear input costs `r_k`, `N` vectors.
    pub r_lin: Vec<Array1<f64>>,
    /// Input lower bounds, `N` vectors (`-∞` for none).
    pub u_lower: Vec<Array1<f64>>,
    /// Input upper bounds, `N` vectors (`+∞` for none).
    pub u_upper: Vec<Array1<f64>>,
    /// State lower bounds, `N + 1` vectors; stage 0 is ignored (x_0 is given).
    pub x_lower: Vec<Array1<f64>>,
    /// State upper bounds, `N + 1` vectors; stage 0 is ignored.
    pub x_upper: Vec<Array1<f64>>,
    /// General rows per stage, `N + 1` entries.
    pub rows: Vec<StageRows>,
}

impl OcpQp {
    /// A problem of the given size with zero dynamics and costs, no bounds and `rows[k]` general
    /// rows at stage `k` (`rows.len()` must be `horizon + 1`, or empty for none).
    ///
    /// # Errors
    /// [`Error::Shape`] when a dimension is zero or `rows` has the wrong length.
    pub fn new(nx: usize, nu: usize, horizon: usize, rows: &[usize]) -> Result<Self> {
        if nx == 0 || nu == 0 || horizon == 0 {
            return Err(Error::shape(
                "OcpQp",
                format!("nx, nu and horizon must be positive, got {nx}, {nu}, {horizon}"),
            ));
        }
        if !rows.is_empty() && rows.len() != horizon + 1 {
            return Err(Error::shape(
                "rows",
                format!(
                    "expected {} stage row counts, got {}",
                    horizon + 1,
                    rows.len()
                ),
            ));
        }
        let n = horizon;
        let vx = |v: f64| Array1::from_elem(nx, v);
        let vu = |v: f64| Array1::from_elem(nu, v);
        Ok(Self {
            nx,
            nu,
            horizon,
            a: vec![Array2::zeros((nx, nx)); n],
            b: vec![Array2::zeros((nx, nu)); n],
            c: vec![Array1::zeros(nx); n],
            q: vec![Array2::zeros((nx, nx)); n + 1],
            r: vec![Array2::eye(nu); n],
            s: vec![Array2::zeros((nu, nx)); n],
            q_lin: vec![Array1::zeros(nx); n + 1],
            r_lin: vec![Array1::zeros(nu); n],
            u_lower: vec![vu(f64::NEG_INFINITY); n],
            u_upper: vec![vu(f64::INFINITY); n],
            x_lower: vec![vx(f64::NEG_INFINITY); n + 1],
            x_upper: vec![vx(f64::INFINITY); n + 1],
            rows: (0..=n)
                .map(|k| StageRows::new(rows.get(k).copied().unwrap_or(0), nx, nu))
                .collect(),
        })
    }

    /// Total number of general rows over all stages.
    pub fn general_rows(&self) -> usize {
        self.rows.iter().map(StageRows::len).sum()
    }

    /// Checks shapes, finiteness (bounds may be infinite but not NaN, with lower ≤ upper) and
    /// penalty weights. Definiteness of the costs is the builder's job (it knows their origin).
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] or [`Error::InvalidValue`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let (nx, nu, n) = (self.nx, self.nu, self.horizon);
        let count = |name: &'static str, got: usize, want: usize| -> Result<()> {
            if got != want {
                return Err(Error::shape(
                    name,
                    format!("expected {want} stages, got {got}"),
                ));
            }
            Ok(())
        };
        count("a", self.a.len(), n)?;
        count("b", self.b.len(), n)?;
        count("c", self.c.len(), n)?;
        count("q", self.q.len(), n + 1)?;
        count("r", self.r.len(), n)?;
        count("s", self.s.len(), n)?;
        count("q_lin", self.q_lin.len(), n + 1)?;
        count("r_lin", self.r_lin.len(), n)?;
        count("u_lower", self.u_lower.len(), n)?;
        count("u_upper", self.u_upper.len(), n)?;
        count("x_lower", self.x_lower.len(), n + 1)?;
        count("x_upper", self.x_upper.len(), n + 1)?;
        count("rows", self.rows.len(), n + 1)?;
        let mat = |name: &'static str, m: &Array2<f64>, shape: (usize, usize)| -> Result<()> {
            if m.dim() != shape {
                return Err(Error::shape(
                    name,
                    format!("expected shape {shape:?}, got {:?}", m.dim()),
                ));
            }
            check_finite(name, m.iter())
        };
        let vec = |name: &'static str, v: &Array1<f64>, len: usize| -> Result<()> {
            if v.len() != len {
                return Err(Error::shape(
                    name,
                    format!("expected length {len}, got {}", v.len()),
                ));
            }
            check_finite(name, v.iter())
        };
        let bounds = |name: &'static str, lo: &Array1<f64>, hi: &Array1<f64>, len: usize| {
            if lo.len() != len || hi.len() != len {
                return Err(Error::shape(
                    name,
                    format!("expected length {len}, got {} and {}", lo.len(), hi.len()),
                ));
            }
            check_bound_arrays(name, lo, hi)
        };
        for k in 0..n {
            mat("a", &self.a[k], (nx, nx))?;
            mat("b", &self.b[k], (nx, nu))?;
            vec("c", &self.c[k], nx)?;
            mat("r", &self.r[k], (nu, nu))?;
            mat("s", &self.s[k], (nu, nx))?;
            vec("r_lin", &self.r_lin[k], nu)?;
            bounds("u bounds", &self.u_lower[k], &self.u_upper[k], nu)?;
        }
        for k in 0..=n {
            mat("q", &self.q[k], (nx, nx))?;
            vec("q_lin", &self.q_lin[k], nx)?;
            bounds("x bounds", &self.x_lower[k], &self.x_upper[k], nx)?;
            let rows = &self.rows[k];
            let m = rows.len();
            mat("rows.c", &rows.c, (m, nx))?;
            mat("rows.d", &rows.d, (m, nu))?;
            bounds("rows bounds", &rows.lower, &rows.upper, m)?;
            if rows.soft.len() != m {
                return Err(Error::shape(
                    "rows.soft",
                    format!("expected length {m}, got {}", rows.soft.len()),
                ));
            }
            vec("rows.soft_l1", &rows.soft_l1, m)?;
            vec("rows.soft_l2", &rows.soft_l2, m)?;
            if rows.soft_l1.iter().chain(&rows.soft_l2).any(|&w| w < 0.0) {
                return Err(Error::invalid_value(
                    "rows",
                    "soft penalty weights must be ≥ 0",
                ));
            }
            if k == n && rows.d.iter().any(|&v| v != 0.0) {
                return Err(Error::invalid_value(
                    "rows.d",
                    "the terminal stage has no input: its D must be zero",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a pair of bound vectors: no NaN, no `+∞` lower or `−∞` upper bound, lower ≤ upper.
///
/// # Errors
/// [`Error::NonFinite`] or [`Error::InvalidValue`] naming `name` and the index.
pub(crate) fn check_bounds(name: &'static str, lo: &[f64], hi: &[f64]) -> Result<()> {
    for (i, (&l, &h)) in lo.iter().zip(hi).enumerate() {
        if l.is_nan() || h.is_nan() || l == f64::INFINITY || h == f64::NEG_INFINITY {
            return Err(Error::NonFinite { name, index: i });
        }
        if l > h {
            return Err(Error::invalid_value(
                name,
                format!("lower bound {l} exceeds upper bound {h} at index {i}"),
            ));
        }
    }
    Ok(())
}

/// [`check_bounds`] for two vectors of equal length.
///
/// # Errors
/// As [`check_bounds`].
pub(crate) fn check_bound_arrays(
    name: &'static str,
    lo: &Array1<f64>,
    hi: &Array1<f64>,
) -> Result<()> {
    match (lo.as_slice(), hi.as_slice()) {
        (Some(l), Some(h)) => check_bounds(name, l, h),
        _ => check_bounds(name, &lo.to_vec(), &hi.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_problem_validates_and_rejects_bad_fields() {
        let mut p = OcpQp::new(2, 1, 3, &[0, 1, 0, 2]).unwrap();
        p.validate().unwrap();
        assert_eq!(p.general_rows(), 3);
        p.u_lower[1][0] = 1.0;
        p.u_upper[1][0] = 0.0;
        assert!(p.validate().is_err());
        let mut p = OcpQp::new(2, 1, 3, &[]).unwrap();
        p.a[0][[0, 1]] = f64::NAN;
        assert!(matches!(p.validate(), Err(Error::NonFinite { .. })));
        assert!(OcpQp::new(0, 1, 3, &[]).is_err());
    }
}
