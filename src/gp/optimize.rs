//! Bounded, multi-start L-BFGS for hyperparameters (shared by the exact and sparse GPs).
//!
//! argmin's L-BFGS (Moré–Thuente line search) runs on unconstrained variables `u`; box bounds
//! `[lo, hi]` on the parameters (log hyperparameters) are imposed by the logistic map
//! `θ = lo + (hi − lo)·σ(u)`, whose derivative enters the chain rule. Starts are the given
//! point plus `n_restarts` points drawn uniformly in the box from a seeded RNG, so a run is
//! reproducible; the best finite optimum wins.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::condition::ArmijoCondition;
use argmin::solver::linesearch::BacktrackingLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Settings of [`minimize`].
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeSettings {
    /// Random restarts in addition to the initial point.
    pub n_restarts: usize,
    /// Seed of the restart points.
    pub seed: u64,
    /// L-BFGS iterations per start.
    pub max_iters: u64,
    /// Stop when the gradient norm (in the unconstrained variables) falls below this.
    pub tol_grad: f64,
}

impl Default for OptimizeSettings {
    fn default() -> Self {
        Self {
            n_restarts: 0,
            seed: 0,
            max_iters: 200,
            tol_grad: 1e-5,
        }
    }
}

/// Outcome of [`minimize`].
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizeResult {
    /// The best parameters found (inside the bounds).
    pub params: Vec<f64>,
    /// Objective value there.
    pub value: f64,
    /// Objective evaluations over all starts.
    pub n_evals: usize,
    /// Starts that ended with a finite optimum.
    pub n_successful_starts: usize,
}

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// A point in the unconstrained variables with its objective value and gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

struct Problem<'a, F> {
    f: RefCell<&'a mut F>,
    lo: &'a [f64],
    hi: &'a [f64],
    cache: RefCell<Option<Evaluation>>,
    evals: RefCell<usize>,
}

impl<F> Problem<'_, F>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    fn to_theta(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(self.lo.iter().zip(self.hi))
            .map(|(&u, (&lo, &hi))| lo + (hi - lo) * sigmoid(u))
            .collect()
    }

    fn eval(&self, u: &[f64]) -> std::result::Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some((cu, v, g)) = self.cache.borrow().as_ref() {
            if cu.as_slice() == u {
                return Ok((*v, g.clone()));
            }
        }
        let theta = self.to_theta(u);
        *self.evals.borrow_mut() += 1;
        let (v, g) =
            (self.f.borrow_mut())(&theta).map_err(|e| argmin::core::Error::msg(e.to_string()))?;
        if !v.is_finite() || g.iter().any(|x| !x.is_finite()) {
            return Err(argmin::core::Error::msg("objective not finite"));
        }
        let gu: Vec<f64> = u
            .iter()
            .zip(&g)
            .zip(self.lo.iter().zip(self.hi))
            .map(|((&u, &g), (&lo, &hi))| {
                let s = sigmoid(u);
                g * (hi - lo) * s * (1.0 - s)
            })
            .collect();
        *self.cache.borrow_mut() = Some((u.to_vec(), v, gu.clone()));
        Ok((v, gu))
    }
}

/// What argmin owns for one start: a borrow of the shared problem (and its cache).
struct Handle<'p, 'a, F>(&'p Problem<'a, F>);

impl<F> CostFunction for Handle<'_, '_, F>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        self.0.eval(u).map(|(v, _)| v)
    }
}

impl<F> Gradient for Handle<'_, '_, F>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, u: &Self::Param) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        self.0.eval(u).map(|(_, g)| g)
    }
}

/// Minimises `f` (value and gradient) over the box `[lo, hi]`, from `x0` and `n_restarts`
/// seeded random starts.
///
/// # Errors
/// [`Error::Shape`] if `x0`, `lo`, `hi` differ in length; [`Error::InvalidValue`] naming
/// `bounds` unless `lo < hi` elementwise and finite; [`Error::Numerical`] if no start reached a
/// finite optimum (the message carries the last failure).
///
/// ```
/// use intent_engine::gp::optimize::{minimize, OptimizeSettings};
/// // (x - 1)² + (y + 2)², with y confined to [-1, 3]: the optimum sits on the bound y = -1.
/// let mut f = |p: &[f64]| Ok(((p[0] - 1.0).powi(2) + (p[1] + 2.0).powi(2),
///                            vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] + 2.0)]));
/// let r = minimize(&mut f, &[0.0, 0.0], &[-5.0, -1.0], &[5.0, 3.0], &OptimizeSettings::default())?;
/// assert!((r.params[0] - 1.0).abs() < 1e-5 && r.params[1] < -0.99);
/// # Ok::<(), intent_engine::Error>(())
/// ```
pub fn minimize<F>(
    f: &mut F,
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    settings: &OptimizeSettings,
) -> Result<OptimizeResult>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    let p = x0.len();
    if lo.len() != p || hi.len() != p {
        return Err(Error::shape(
            "bounds",
            format_args!(
                "expected {p} lower and upper bounds, got {} and {}",
                lo.len(),
                hi.len()
            ),
        ));
    }
    if lo
        .iter()
        .zip(hi)
        .any(|(l, h)| !(l.is_finite() && h.is_finite() && l < h))
    {
        return Err(Error::invalid_value(
            "bounds",
            "each lower bound must be finite and below its upper bound",
        ));
    }
    crate::error::check_finite("x0", x0)?;
    let to_u = |x: &[f64]| -> Vec<f64> {
        x.iter()
            .zip(lo.iter().zip(hi))
            .map(|(&x, (&l, &h))| {
                // Keep starts strictly inside so the logit is finite.
                let s = ((x - l) / (h - l)).clamp(1e-9, 1.0 - 1e-9);
                (s / (1.0 - s)).ln()
            })
            .collect()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut starts = vec![to_u(x0)];
    for _ in 0..settings.n_restarts {
        let x: Vec<f64> = lo
            .iter()
            .zip(hi)
            .map(|(&l, &h)| rng.random_range(l..h))
            .collect();
        starts.push(to_u(&x));
    }
    let problem = Problem {
        f: RefCell::new(f),
        lo,
        hi,
        cache: RefCell::new(None),
        evals: RefCell::new(0),
    };
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut successes = 0;
    let mut last_err = String::from("no start evaluated");
    for u0 in starts {
        // Evaluate the start first: a start where the objective fails is skipped.
        if let Err(e) = problem.eval(&u0) {
            last_err = e.to_string();
            continue;
        }
        let line_search = ArmijoCondition::new(1e-4)
            .and_then(|c| BacktrackingLineSearch::new(c).rho(0.5))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let solver = match LBFGS::new(line_search, 10)
            .with_tolerance_grad(settings.tol_grad)
            .and_then(|s| s.with_tolerance_cost(1e-12))
        {
            Ok(s) => s,
            Err(e) => return Err(Error::Internal(e.to_string())),
        };
        let res = Executor::new(Handle(&problem), solver)
            .configure(|st| st.param(u0.clone()).max_iters(settings.max_iters))
            .run();
        let (u, v) = match res {
            Ok(r) => {
                let st = r.state();
                match st.get_best_param() {
                    Some(u) => (u.clone(), st.get_best_cost()),
                    None => (u0.clone(), problem.eval(&u0).map_or(f64::INFINITY, |x| x.0)),
                }
            }
            Err(e) => {
                // A failed line search still leaves the start (or the cached last point).
                last_err = e.to_string();
                match problem.cache.borrow().as_ref() {
                    Some((u, v, _)) => (u.clone(), *v),
                    None => continue,
                }
            }
        };
        if v.is_finite() {
            successes += 1;
            if best.as_ref().is_none_or(|(_, bv)| v < *bv) {
                best = Some((u, v));
            }
        }
    }
    let n_evals = *problem.evals.borrow();
    match best {
        Some((u, value)) => Ok(OptimizeResult {
            params: problem.to_theta(&u),
            value,
            n_evals,
            n_successful_starts: successes,
        }),
        None => Err(Error::Numerical {
            what: "hyperparameter optimisation",
            detail: format!("no start reached a finite optimum: {last_err}"),
        }),
    }
}
