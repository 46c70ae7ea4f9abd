//! Bounded, multi-start L-BFGS for hyperparameters (shared by the exact and sparse GPs).
//!
//! argmin's L-BFGS with a backtracking (Armijo) line search runs directly on the parameters
//! (log hyperparameters). Box bounds `[lo, hi]` are kept by making the objective +∞ outside the
//! box, so the line search backtracks into it: iterates never leave the box, and the usual
//! interior optimum is found at full L-BFGS speed (a logistic reparameterisation was tried
//! first; it bent the landscape and doubled the evaluations). Starts are the given point plus
//! `n_restarts` points drawn uniformly in the box from a seeded RNG, so a run is reproducible;
//! the best finite optimum wins.

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
    /// Stop when an iteration changes the objective by less than this times its magnitude
    /// (scipy's L-BFGS-B default is 1e7 · ε ≈ 2.2e-9).
    pub rel_tol_cost: f64,
}

impl Default for OptimizeSettings {
    fn default() -> Self {
        Self {
            n_restarts: 0,
            seed: 0,
            max_iters: 200,
            tol_grad: 1e-5,
            rel_tol_cost: 1e7 * f64::EPSILON,
        }
    }
}

impl OptimizeSettings {
    /// Checks ranges (called by [`minimize`] before anything runs).
    ///
    /// ```
    /// use intent_engine::gp::OptimizeSettings;
    /// let bad = OptimizeSettings { tol_grad: f64::NAN, ..OptimizeSettings::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("tol_grad"));
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `max_iters` (0), `tol_grad` or `rel_tol_cost` (negative
    /// or not finite).
    pub fn validate(&self) -> Result<()> {
        if self.max_iters == 0 {
            return Err(Error::invalid_value("max_iters", "must be at least 1"));
        }
        for (name, v) in [
            ("tol_grad", self.tol_grad),
            ("rel_tol_cost", self.rel_tol_cost),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_value(
                    name,
                    format_args!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        Ok(())
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

/// A point in the unconstrained variables with its objective value and gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

struct Problem<'a, F> {
    f: RefCell<&'a mut F>,
    lo: &'a [f64],
    hi: &'a [f64],
    cache: RefCell<Option<Evaluation>>,
    evals: RefCell<usize>,
    /// Phase 2: `θ = lo + (hi − lo)·σ(u)` instead of `θ = u`.
    logistic: bool,
}

fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

impl<F> Problem<'_, F>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    fn to_theta(&self, u: &[f64]) -> Vec<f64> {
        if !self.logistic {
            return u.to_vec();
        }
        u.iter()
            .zip(self.lo.iter().zip(self.hi))
            .map(|(&u, (&lo, &hi))| lo + (hi - lo) * sigmoid(u))
            .collect()
    }

    fn to_u(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(self.lo.iter().zip(self.hi))
            .map(|(&x, (&l, &h))| {
                if self.logistic {
                    // Strictly inside so the logit is finite.
                    let s = ((x - l) / (h - l)).clamp(1e-9, 1.0 - 1e-9);
                    (s / (1.0 - s)).ln()
                } else {
                    x.clamp(l, h)
                }
            })
            .collect()
    }

    fn eval(&self, u: &[f64]) -> std::result::Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some((cu, v, g)) = self.cache.borrow().as_ref() {
            if cu.as_slice() == u {
                return Ok((*v, g.clone()));
            }
        }
        let theta = self.to_theta(u);
        // Outside the box the objective is +∞: the Armijo line search backtracks into it.
        if theta
            .iter()
            .zip(self.lo.iter().zip(self.hi))
            .any(|(t, (l, h))| t < l || t > h)
        {
            return Ok((f64::INFINITY, vec![0.0; u.len()]));
        }
        *self.evals.borrow_mut() += 1;
        let (v, g) =
            (self.f.borrow_mut())(&theta).map_err(|e| argmin::core::Error::msg(e.to_string()))?;
        if !v.is_finite() || g.iter().any(|x| !x.is_finite()) {
            return Err(argmin::core::Error::msg("objective not finite"));
        }
        let gu: Vec<f64> = if self.logistic {
            u.iter()
                .zip(&g)
                .zip(self.lo.iter().zip(self.hi))
                .map(|((&u, &g), (&lo, &hi))| {
                    let s = sigmoid(u);
                    g * (hi - lo) * s * (1.0 - s)
                })
                .collect()
        } else {
            g
        };
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

/// One L-BFGS run from `x0` (parameter space); returns the best parameters, their value and
/// the gradient norm there (in the run's variables).
fn run_start<F>(
    problem: &Problem<'_, F>,
    x0: &[f64],
    settings: &OptimizeSettings,
) -> std::result::Result<(Vec<f64>, f64, f64), String>
where
    F: FnMut(&[f64]) -> Result<(f64, Vec<f64>)>,
{
    let u0 = problem.to_u(x0);
    let f0 = problem.eval(&u0).map_err(|e| e.to_string())?.0;
    // Stop when the objective changes by less than ~1e7 machine epsilons relative to its
    // size (scipy L-BFGS-B's default factr), or the gradient norm drops below tol_grad.
    let tol_cost = settings.rel_tol_cost * f0.abs().max(1.0);
    let solver = ArmijoCondition::new(1e-4)
        .and_then(|c| BacktrackingLineSearch::new(c).rho(0.5))
        .and_then(|ls| LBFGS::new(ls, 10).with_tolerance_grad(settings.tol_grad))
        .and_then(|s| s.with_tolerance_cost(tol_cost))
        .map_err(|e| e.to_string())?;
    let res = Executor::new(Handle(problem), solver)
        .configure(|st| st.param(u0.clone()).max_iters(settings.max_iters))
        .run();
    let u = match res {
        Ok(r) => r.state().get_best_param().cloned().unwrap_or(u0),
        // A failed line search still leaves the last evaluated point.
        Err(e) => match problem.cache.borrow().as_ref() {
            Some((u, _, _)) => u.clone(),
            None => return Err(e.to_string()),
        },
    };
    let (v, g) = problem.eval(&u).map_err(|e| e.to_string())?;
    if !v.is_finite() {
        return Err("objective not finite at the optimum".into());
    }
    let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    Ok((problem.to_theta(&u), v, gnorm))
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
    settings.validate()?;
    let p = x0.len();
    if p == 0 {
        // The objective would be called with no parameters: nothing to optimise.
        return Err(Error::shape("x0", "must hold at least one parameter"));
    }
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
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut starts = vec![x0.to_vec()];
    for _ in 0..settings.n_restarts {
        let x: Vec<f64> = lo
            .iter()
            .zip(hi)
            .map(|(&l, &h)| rng.random_range(l..h))
            .collect();
        starts.push(x);
    }
    let mut problem = Problem {
        f: RefCell::new(f),
        lo,
        hi,
        cache: RefCell::new(None),
        evals: RefCell::new(0),
        logistic: false,
    };
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut successes = 0;
    let mut last_err = String::from("no start evaluated");
    for x in starts {
        // Phase 1 works on θ directly (fast for interior optima); if it stops with a large
        // gradient — stalled against a bound — phase 2 continues through the logistic map,
        // which reaches optima on the boundary.
        let mut point = x;
        let mut outcome = None;
        for logistic in [false, true] {
            problem.logistic = logistic;
            *problem.cache.borrow_mut() = None;
            match run_start(&problem, &point, settings) {
                Ok((theta, v, gnorm)) => {
                    let converged = gnorm <= 10.0 * settings.tol_grad;
                    point.clone_from(&theta);
                    outcome = Some((theta, v));
                    if converged {
                        break;
                    }
                }
                Err(e) => {
                    last_err = e;
                    if outcome.is_none() {
                        break;
                    }
                }
            }
        }
        if let Some((theta, v)) = outcome {
            successes += 1;
            if best.as_ref().is_none_or(|(_, bv)| v < *bv) {
                best = Some((theta, v));
            }
        }
    }
    let n_evals = *problem.evals.borrow();
    match best {
        Some((params, value)) => Ok(OptimizeResult {
            params,
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
