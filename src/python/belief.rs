//! The belief core in Python: `GoalInference`, `ParticleFilter` (built-in models), resamplers
//! and acquisition functions — thin skins over [`crate::belief`].

use ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use super::array;
use super::errors::{choice, invalid, renamed, run, run_renamed, to_py};
use crate::belief::acquisition::{self as acq, Improvement, ParticleUtilities};
use crate::belief::{
    resample, FilterSettings, Goal, GoalInference, GoalModel, GoalModelSettings, GoalVelocity,
    GpMotion, LinearGaussian, ParticleFilter, Resampling, StepInfo, StepStatus,
};

pub(crate) fn status_str(info: &StepInfo) -> &'static str {
    match info.status {
        StepStatus::Ok => "ok",
        StepStatus::Resampled => "resampled",
        StepStatus::Reinitialised => "reinitialised",
    }
}

pub(crate) fn count(py: Python<'_>, name: &'static str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| invalid(py, name, format_args!("must be >= 0, got {v}")))
}

/// Goals from a (K, 2) array of points or a (K, 3) array of discs (x, y, radius).
pub(crate) fn goals_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Goal>> {
    let py = obj.py();
    let g = array::matrix(obj, "goals")?;
    let g = g.as_array();
    let (k, c) = g.dim();
    if k == 0 {
        return Err(invalid(py, "goals", "at least one goal is required"));
    }
    if c != 2 && c != 3 {
        return Err(invalid(
            py,
            "goals",
            format_args!("expected shape (K, 2) points or (K, 3) discs, got (K, {c})"),
        ));
    }
    Ok((0..k)
        .map(|i| Goal {
            x: g[[i, 0]],
            y: g[[i, 1]],
            radius: if c == 3 { g[[i, 2]] } else { 0.0 },
        })
        .collect())
}

pub(crate) fn point_arg(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<[f64; 2]> {
    let v = array::vector(obj, name)?;
    let v = v.as_array();
    if v.len() != 2 {
        return Err(invalid(
            obj.py(),
            name,
            format_args!("expected 2 values [x, y], got {}", v.len()),
        ));
    }
    let p = [v[0], v[1]];
    array::check_finite(obj.py(), name, &p)?;
    Ok(p)
}

/// "constant_speed" (walk at `speed` toward the goal) or "heading" (keep the current speed,
/// steer toward the goal).
pub(crate) fn velocity_model_arg(
    py: Python<'_>,
    name: &str,
    slow_radius: f64,
) -> PyResult<GoalVelocity> {
    match name {
        "constant_speed" => Ok(GoalVelocity::ConstantSpeed { slow_radius }),
        "heading" => Ok(GoalVelocity::Heading { slow_radius }),
        _ => Err(invalid(
            py,
            "velocity_model",
            format_args!("expected \"constant_speed\" or \"heading\", got {name:?}"),
        )),
    }
}

/// A `goal_prior=` argument: a 1-D float array (its weights are checked by the core).
pub(crate) fn goal_prior_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    Ok(array::vector(obj, "goal_prior")?.as_array().to_vec())
}

/// The keys `GoalInference(forecast=...)` accepts.
pub(crate) const FORECAST_KEYS: &[&str] = &[
    "dt",
    "speed",
    "rationality",
    "velocity_noise",
    "switch_prob",
    "velocity_model",
    "slow_radius",
];

/// Motion settings for predictions: `base` with the keys of the `forecast` dict (among
/// `allowed`) applied.
pub(crate) fn forecast_arg(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    base: &GoalModelSettings,
    allowed: &[&str],
) -> PyResult<GoalModelSettings> {
    let keys = allowed.join(", ");
    let keys = keys.as_str();
    let d = obj.cast::<pyo3::types::PyDict>().map_err(|_| {
        invalid(
            py,
            "forecast",
            format_args!("expected a dict with keys among {keys}"),
        )
    })?;
    let mut s = base.clone();
    let (mut model, mut slow) = (None::<String>, None::<f64>);
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| invalid(py, "forecast", "keys must be strings"))?;
        let num = |v: &Bound<'_, PyAny>| {
            v.extract::<f64>()
                .map_err(|_| invalid(py, "forecast", format_args!("{key:?} must be a number")))
        };
        // Keys outside `allowed` fall through to the error arm.
        match allowed.contains(&key.as_str()).then_some(key.as_str()) {
            Some("dt") => s.dt = num(&v)?,
            Some("speed") => s.speed = num(&v)?,
            Some("rationality") => s.rationality = num(&v)?,
            Some("velocity_noise") => s.velocity_noise = num(&v)?,
            Some("switch_prob") => s.switch_prob = num(&v)?,
            Some("slow_radius") => slow = Some(num(&v)?),
            Some("velocity_model") => {
                model =
                    Some(v.extract().map_err(|_| {
                        invalid(py, "forecast", "\"velocity_model\" must be a string")
                    })?);
            }
            _ => {
                return Err(invalid(
                    py,
                    "forecast",
                    format_args!("unknown key {key:?}; expected keys among {keys}"),
                ))
            }
        }
    }
    let (name, r) = match base.velocity {
        GoalVelocity::ConstantSpeed { slow_radius } => ("constant_speed", slow_radius),
        GoalVelocity::Heading { slow_radius } => ("heading", slow_radius),
        GoalVelocity::Linear { .. } => ("constant_speed", 0.5),
    };
    if model.is_some() || slow.is_some() {
        s.velocity = velocity_model_arg(py, model.as_deref().unwrap_or(name), slow.unwrap_or(r))?;
    }
    s.validate()
        .map_err(|e| invalid(py, "forecast", e.to_string()))?;
    Ok(s)
}

fn scheme(py: Python<'_>, name: &str) -> PyResult<Resampling> {
    Resampling::parse(name).map_err(|e| to_py(py, &e))
}

/// Online Bayesian goal inference for a person walking toward one of K goals.
#[pyclass(name = "GoalInference", module = "intent_engine._core")]
pub(crate) struct PyGoalInference {
    inner: GoalInference,
    predict_calls: u64,
    /// No update and no goal edit yet: the state is the one its settings build (picklable).
    pristine: bool,
}

#[pymethods]
impl PyGoalInference {
    #[new]
    #[pyo3(signature = (goals, *, n_particles=1000, dt=0.1, seed=0, speed=1.2, obs_noise=0.05,
        resampling="systematic", ess_threshold=0.5, rationality=1.0, velocity_noise=0.5,
        switch_prob=0.0, slow_radius=0.5, velocity_model="constant_speed", threads=1,
        proposal="bootstrap", goal_prior=None, forecast=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        goals: &Bound<'_, PyAny>,
        n_particles: i64,
        dt: f64,
        seed: u64,
        speed: f64,
        obs_noise: f64,
        resampling: &str,
        ess_threshold: f64,
        rationality: f64,
        velocity_noise: f64,
        switch_prob: f64,
        slow_radius: f64,
        velocity_model: &str,
        threads: i64,
        proposal: &str,
        goal_prior: Option<&Bound<'_, PyAny>>,
        forecast: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let goals = goals_arg(goals)?;
        let guided = choice(py, "proposal", proposal, "bootstrap", "guided")?;
        let model = GoalModelSettings {
            dt,
            speed,
            rationality,
            velocity_noise,
            obs_noise,
            switch_prob,
            velocity: velocity_model_arg(py, velocity_model, slow_radius)?,
            guided,
            ..Default::default()
        };
        let filter = FilterSettings {
            n_particles: count(py, "n_particles", n_particles)?,
            resampling: scheme(py, resampling)?,
            ess_threshold,
            seed,
            par: array::par(py, threads)?,
        };
        let prior = goal_prior.map(goal_prior_arg).transpose()?;
        let forecast = match forecast {
            Some(f) => Some(forecast_arg(py, f, &model, FORECAST_KEYS)?),
            None => None,
        };
        let inner = build(&goals, prior.as_deref(), model, filter, forecast)
            .map_err(|e| to_py(py, &renamed(e, &[("prior", "goal_prior")])))?;
        Ok(Self {
            inner,
            predict_calls: 0,
            pristine: true,
        })
    }

    /// Pickle support: carries the goals, the model settings, the filter settings (seed,
    /// particle count, resampling, threads) and the count of seedless predictions, and builds
    /// a fresh filter from them on unpickling, which then gives identical results for identical
    /// calls. Only a filter that has not been updated (and whose goals were not edited) can be
    /// pickled: a running filter's particles and random stream are not carried, so pickling one
    /// raises InvalidInputError.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String, u64))> {
        let py = slf.py();
        let me = slf.borrow();
        if !me.pristine {
            return Err(invalid(
                py,
                "GoalInference",
                "only a filter that has not been updated (and whose goals were not edited) can \
                 be pickled: its particles and random stream are not carried; pickle it before \
                 its first update, or build a new one from the same settings",
            ));
        }
        let pf = me.inner.filter();
        let m = pf.model();
        let state = (
            m.goals(),
            m.settings(),
            pf.settings(),
            m.prior(),
            me.inner.forecast_settings(),
        );
        let json = serde_json::to_string(&state)
            .map_err(|e| invalid(py, "GoalInference", format_args!("cannot pickle: {e}")))?;
        let f = py
            .import("intent_engine._core")?
            .getattr("_goal_inference_from_state")?;
        Ok((f, (json, me.predict_calls)))
    }

    /// Assimilates an observed position [x, y]; returns "ok", "resampled" or "reinitialised".
    fn update(&mut self, py: Python<'_>, z: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        self.pristine = false;
        let z = point_arg(z, "z")?;
        let inner = &mut self.inner;
        let info = run(py, || inner.update(z))?;
        Ok(status_str(&info))
    }

    /// Posterior probability of each goal, shape (K,).
    fn goal_probabilities<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        Array1::from(self.inner.goal_probabilities()).into_pyarray(py)
    }

    /// Predicted positions over steps 1..=horizon: mean (H, 2) and covariance (H, 2, 2),
    /// simulated with the `forecast` motion settings when given (else the filter's).
    #[pyo3(signature = (horizon, *, seed=None))]
    fn predict(&mut self, py: Python<'_>, horizon: i64, seed: Option<u64>) -> PyResult<Py<PyAny>> {
        let h = count(py, "horizon", horizon)?;
        if h == 0 {
            return Err(invalid(py, "horizon", "must be >= 1"));
        }
        self.predict_calls += 1;
        let seed = seed.unwrap_or(self.inner.filter().settings().seed ^ self.predict_calls);
        let inner = &mut self.inner;
        let (m, c) = run(py, || {
            let (mut m, mut c) = (vec![0.0; 2 * h], vec![0.0; 4 * h]);
            inner.predict_into(h, seed, &mut m, &mut c)?;
            Ok((m, c))
        })?;
        let m = Array2::from_shape_vec((h, 2), m).map_err(|e| invalid(py, "horizon", e))?;
        let c = Array3::from_shape_vec((h, 2, 2), c).map_err(|e| invalid(py, "horizon", e))?;
        (m.into_pyarray(py), c.into_pyarray(py)).into_py_any(py)
    }

    /// n sampled position trajectories, shape (n, horizon, 2).
    #[pyo3(signature = (horizon, n, *, seed=0))]
    fn sample_trajectories<'py>(
        &self,
        py: Python<'py>,
        horizon: i64,
        n: i64,
        seed: u64,
    ) -> PyResult<Bound<'py, numpy::PyArray3<f64>>> {
        let h = count(py, "horizon", horizon)?;
        let n = count(py, "n", n)?;
        let inner = &self.inner;
        let v = run(py, || inner.sample_trajectories(h, n, seed))?;
        Ok(Array3::from_shape_vec((n, h, 2), v)
            .map_err(|e| invalid(py, "n", e))?
            .into_pyarray(py))
    }

    /// Effective sample size after the last update.
    fn effective_sample_size(&self) -> f64 {
        self.inner.filter().ess()
    }

    /// Running log-likelihood estimate log Z of the observations so far.
    #[getter]
    fn log_likelihood(&self) -> f64 {
        self.inner.filter().log_z()
    }

    /// Number of goals.
    #[getter]
    fn n_goals(&self) -> usize {
        self.inner.filter().model().n_goals()
    }

    /// Posterior mean of [x, y, vx, vy].
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        Array1::from(self.inner.filter().mean()[..4].to_vec()).into_pyarray(py)
    }

    /// Posterior covariance of [x, y, vx, vy], shape (4, 4).
    fn covariance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let f = self.inner.filter();
        let d = f.state_dim();
        let c = f.covariance();
        let out = Array2::from_shape_fn((4, 4), |(i, j)| c[i * d + j]);
        Ok(out.into_pyarray(py))
    }

    /// Adds a goal [x, y] (or [x, y, radius]) at run time.
    fn add_goal(&mut self, py: Python<'_>, goal: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = array::vector(goal, "goal")?;
        let v = v.as_array();
        if v.len() != 2 && v.len() != 3 {
            return Err(invalid(py, "goal", "expected [x, y] or [x, y, radius]"));
        }
        let g = Goal {
            x: v[0],
            y: v[1],
            radius: if v.len() == 3 { v[2] } else { 0.0 },
        };
        self.inner.add_goal(g).map_err(|e| to_py(py, &e))?;
        self.pristine = false;
        Ok(())
    }

    /// Removes goal `index`.
    fn remove_goal(&mut self, py: Python<'_>, index: i64) -> PyResult<()> {
        let i = count(py, "index", index)?;
        self.inner.remove_goal(i).map_err(|e| to_py(py, &e))?;
        self.pristine = false;
        Ok(())
    }
}

/// A pickled GoalInference: a JSON array; pickles made before the goal prior and the
/// forecast settings were carried have three elements (uniform prior, no forecast model).
#[derive(serde::Deserialize)]
struct PickleState {
    goals: Vec<Goal>,
    model: GoalModelSettings,
    filter: FilterSettings,
    #[serde(default)]
    prior: Vec<f64>,
    #[serde(default)]
    forecast: Option<GoalModelSettings>,
}

/// A goal-inference filter, with a goal prior and a forecast model when given.
fn build(
    goals: &[Goal],
    prior: Option<&[f64]>,
    model: GoalModelSettings,
    filter: FilterSettings,
    forecast: Option<GoalModelSettings>,
) -> crate::Result<GoalInference> {
    let mut m = GoalModel::new(goals, model)?;
    if let Some(p) = prior {
        m = m.with_prior(p)?;
    }
    let mut gi = GoalInference::from_model(m, filter)?;
    gi.set_forecast_settings(forecast)?;
    Ok(gi)
}

/// Unpickles a GoalInference (see `GoalInference.__reduce__`): goals, model and filter
/// settings as JSON, and the count of seedless predictions made before pickling.
#[pyfunction]
fn _goal_inference_from_state(
    py: Python<'_>,
    state_json: &str,
    predict_calls: u64,
) -> PyResult<PyGoalInference> {
    let st: PickleState = serde_json::from_str(state_json)
        .map_err(|e| invalid(py, "state_json", format_args!("{e}")))?;
    let prior = (!st.prior.is_empty()).then_some(&st.prior[..]);
    let inner =
        build(&st.goals, prior, st.model, st.filter, st.forecast).map_err(|e| to_py(py, &e))?;
    Ok(PyGoalInference {
        inner,
        predict_calls,
        pristine: true,
    })
}

enum AnyFilter {
    Lg(ParticleFilter<LinearGaussian>),
    Goal(ParticleFilter<GoalModel>),
    Gp(Box<ParticleFilter<GpMotion>>),
}

/// A particle filter over a built-in model: `ParticleFilter.linear_gaussian(...)` or
/// `ParticleFilter.goal_directed(...)`.
#[pyclass(name = "ParticleFilter", module = "intent_engine._core")]
pub(crate) struct PyParticleFilter {
    inner: AnyFilter,
}

fn settings(
    py: Python<'_>,
    n_particles: i64,
    seed: u64,
    resampling: &str,
    ess_threshold: f64,
    threads: i64,
) -> PyResult<FilterSettings> {
    Ok(FilterSettings {
        n_particles: count(py, "n_particles", n_particles)?,
        resampling: scheme(py, resampling)?,
        ess_threshold,
        seed,
        par: array::par(py, threads)?,
    })
}

fn flat(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<(Vec<f64>, usize, usize)> {
    let m = array::matrix(obj, name)?;
    let a = m.as_array();
    let (r, c) = a.dim();
    if r == 0 || c == 0 {
        return Err(invalid(
            obj.py(),
            name,
            format_args!("must not be empty, got shape ({r}, {c})"),
        ));
    }
    Ok((a.iter().copied().collect(), r, c))
}

macro_rules! with_filter {
    ($self:expr, $f:ident => $body:expr) => {
        match &$self.inner {
            AnyFilter::Lg($f) => $body,
            AnyFilter::Goal($f) => $body,
            AnyFilter::Gp($f) => $body,
        }
    };
}

#[pymethods]
impl PyParticleFilter {
    /// x' = A x + N(0, Q), y = H x + N(0, R), x0 ~ N(m0, P0); `guided=True` uses the
    /// locally optimal proposal.
    #[staticmethod]
    #[pyo3(signature = (A, Q, H, R, m0, P0, *, n_particles=1000, seed=0, resampling="systematic",
        ess_threshold=0.5, guided=false, threads=1))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn linear_gaussian(
        py: Python<'_>,
        A: &Bound<'_, PyAny>,
        Q: &Bound<'_, PyAny>,
        H: &Bound<'_, PyAny>,
        R: &Bound<'_, PyAny>,
        m0: &Bound<'_, PyAny>,
        P0: &Bound<'_, PyAny>,
        n_particles: i64,
        seed: u64,
        resampling: &str,
        ess_threshold: f64,
        guided: bool,
        threads: i64,
    ) -> PyResult<Self> {
        let (a, nx, _) = flat(A, "A")?;
        let (q, _, _) = flat(Q, "Q")?;
        let (h, ny, _) = flat(H, "H")?;
        let (r, _, _) = flat(R, "R")?;
        let m0 = array::vector(m0, "m0")?.as_array().to_vec();
        let (p0, _, _) = flat(P0, "P0")?;
        let m = LinearGaussian::new(nx, ny, &a, &q, &h, &r, &m0, &p0)
            .map_err(|e| to_py(py, &e))?
            .with_optimal_proposal(guided);
        let s = settings(py, n_particles, seed, resampling, ess_threshold, threads)?;
        Ok(Self {
            inner: AnyFilter::Lg(ParticleFilter::new(m, s).map_err(|e| to_py(py, &e))?),
        })
    }

    /// The goal-inference model with explicit initial mean/std of [x, y, vx, vy]; the state
    /// is [x, y, vx, vy, p(goal 0), ..., p(goal K-1)].
    #[staticmethod]
    #[pyo3(signature = (goals, init_mean, init_std, *, n_particles=1000, dt=0.1, seed=0,
        speed=1.2, obs_noise=0.05, rationality=1.0, velocity_noise=0.5, switch_prob=0.0,
        slow_radius=0.5, resampling="systematic", ess_threshold=0.5, threads=1))]
    #[allow(clippy::too_many_arguments)]
    fn goal_directed(
        py: Python<'_>,
        goals: &Bound<'_, PyAny>,
        init_mean: &Bound<'_, PyAny>,
        init_std: &Bound<'_, PyAny>,
        n_particles: i64,
        dt: f64,
        seed: u64,
        speed: f64,
        obs_noise: f64,
        rationality: f64,
        velocity_noise: f64,
        switch_prob: f64,
        slow_radius: f64,
        resampling: &str,
        ess_threshold: f64,
        threads: i64,
    ) -> PyResult<Self> {
        let goals = goals_arg(goals)?;
        let four = |obj: &Bound<'_, PyAny>, name: &'static str| -> PyResult<[f64; 4]> {
            let v = array::vector(obj, name)?.as_array().to_vec();
            v.try_into()
                .map_err(|_| invalid(py, name, "expected 4 values [x, y, vx, vy]"))
        };
        let ms = GoalModelSettings {
            dt,
            speed,
            rationality,
            velocity_noise,
            obs_noise,
            switch_prob,
            velocity: GoalVelocity::ConstantSpeed { slow_radius },
            init_mean: four(init_mean, "init_mean")?,
            init_std: four(init_std, "init_std")?,
            guided: false,
        };
        let m = GoalModel::new(&goals, ms).map_err(|e| to_py(py, &e))?;
        let s = settings(py, n_particles, seed, resampling, ess_threshold, threads)?;
        Ok(Self {
            inner: AnyFilter::Goal(ParticleFilter::new(m, s).map_err(|e| to_py(py, &e))?),
        })
    }

    /// A motion model whose velocity field is a fitted GaussianProcess (2 inputs: position;
    /// 2 outputs: velocity); state [x, y].
    #[staticmethod]
    #[pyo3(signature = (gp, init, *, dt=0.1, init_std=0.1, extra_velocity_var=0.01, obs_noise=0.05,
        n_particles=1000, seed=0, resampling="systematic", ess_threshold=0.5, threads=1))]
    #[allow(clippy::too_many_arguments)]
    fn gp_motion(
        py: Python<'_>,
        gp: PyRef<'_, super::gp::PyGaussianProcess>,
        init: &Bound<'_, PyAny>,
        dt: f64,
        init_std: f64,
        extra_velocity_var: f64,
        obs_noise: f64,
        n_particles: i64,
        seed: u64,
        resampling: &str,
        ess_threshold: f64,
        threads: i64,
    ) -> PyResult<Self> {
        let init = point_arg(init, "init")?;
        let m = GpMotion::new(
            gp.inner.clone(),
            dt,
            extra_velocity_var,
            obs_noise,
            init,
            init_std,
        )
        .map_err(|e| to_py(py, &e))?;
        let s = settings(py, n_particles, seed, resampling, ess_threshold, threads)?;
        Ok(Self {
            inner: AnyFilter::Gp(Box::new(
                ParticleFilter::new(m, s).map_err(|e| to_py(py, &e))?,
            )),
        })
    }

    /// Assimilates one observation; returns "ok", "resampled" or "reinitialised".
    fn step(&mut self, py: Python<'_>, y: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let v = array::vector(y, "y")?.as_array().to_vec();
        let y = &[("observation", "y")];
        let info = match &mut self.inner {
            AnyFilter::Lg(f) => run_renamed(py, y, || f.step(&v[..]))?,
            AnyFilter::Goal(f) => run_renamed(py, y, || f.step(&v[..]))?,
            AnyFilter::Gp(f) => run_renamed(py, y, || f.step(&v[..]))?,
        };
        Ok(status_str(&info))
    }

    /// Weighted mean of the state.
    fn mean<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        Array1::from(with_filter!(self, f => f.mean())).into_pyarray(py)
    }

    /// Weighted covariance of the state, (d, d).
    fn covariance<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let (c, d) = with_filter!(self, f => (f.covariance(), f.state_dim()));
        Ok(Array2::from_shape_vec((d, d), c)
            .map_err(|e| invalid(py, "state", e))?
            .into_pyarray(py))
    }

    /// Normalised weights, (N,).
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        Array1::from(with_filter!(self, f => f.weights().to_vec())).into_pyarray(py)
    }

    /// The particles, (N, d).
    fn particles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArray2<f64>>> {
        let (n, d) = with_filter!(self, f => (f.n_particles(), f.state_dim()));
        let mut out = Array2::zeros((n, d));
        let mut col = vec![0.0; n];
        for c in 0..d {
            with_filter!(self, f => f.component_into(c, &mut col)).map_err(|e| to_py(py, &e))?;
            out.column_mut(c).assign(&Array1::from(col.clone()));
        }
        Ok(out.into_pyarray(py))
    }

    /// Effective sample size after the last step.
    fn effective_sample_size(&self) -> f64 {
        with_filter!(self, f => f.ess())
    }

    /// Running log-likelihood estimate log Z.
    #[getter]
    fn log_likelihood(&self) -> f64 {
        with_filter!(self, f => f.log_z())
    }

    /// Number of particles.
    #[getter]
    fn n_particles(&self) -> usize {
        with_filter!(self, f => f.n_particles())
    }
}

fn resample_py<'py>(
    py: Python<'py>,
    s: Resampling,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let w = array::vector(weights, "weights")?;
    let w = w.as_slice().map_err(|e| invalid(py, "weights", e))?;
    let n = n.map(|n| count(py, "n", n)).transpose()?;
    let idx = run(py, || resample(s, w, n, seed))?;
    Ok(Array1::from(idx.into_iter().map(|i| i as i64).collect::<Vec<_>>()).into_pyarray(py))
}

/// Systematic resampling: offspring indices (n defaults to len(weights)).
#[pyfunction]
#[pyo3(signature = (weights, seed=0, n=None))]
fn systematic_resample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    resample_py(py, Resampling::Systematic, weights, seed, n)
}

/// Stratified resampling: offspring indices.
#[pyfunction]
#[pyo3(signature = (weights, seed=0, n=None))]
fn stratified_resample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    resample_py(py, Resampling::Stratified, weights, seed, n)
}

/// Residual resampling: offspring indices.
#[pyfunction]
#[pyo3(signature = (weights, seed=0, n=None))]
fn residual_resample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    resample_py(py, Resampling::Residual, weights, seed, n)
}

/// Multinomial resampling: offspring indices.
#[pyfunction]
#[pyo3(signature = (weights, seed=0, n=None))]
fn multinomial_resample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    resample_py(py, Resampling::Multinomial, weights, seed, n)
}

/// Rejection resampling (no prefix sum; GPU/f32-friendly): offspring indices.
#[pyfunction]
#[pyo3(signature = (weights, seed=0, n=None))]
fn rejection_resample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
    n: Option<i64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    resample_py(py, Resampling::Rejection, weights, seed, n)
}

fn mean_std<'py>(
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
) -> PyResult<(
    numpy::PyReadonlyArray1<'py, f64>,
    numpy::PyReadonlyArray1<'py, f64>,
)> {
    Ok((array::vector(mean, "mean")?, array::vector(std, "std")?))
}

/// Upper confidence bound mean + sqrt(beta) * std.
#[pyfunction]
#[pyo3(signature = (mean, std, beta=2.0))]
fn ucb<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    beta: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let (m, s) = mean_std(mean, std)?;
    let (m, s) = (m.as_array(), s.as_array());
    let (m, s) = (m.as_slice().unwrap_or(&[]), s.as_slice().unwrap_or(&[]));
    let out = run(py, || {
        let mut o = vec![0.0; m.len()];
        acq::ucb_into(m, s, beta, &mut o)?;
        Ok(o)
    })?;
    Ok(Array1::from(out).into_pyarray(py))
}

fn improvement<'py>(
    py: Python<'py>,
    kind: Improvement,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let (m, s) = mean_std(mean, std)?;
    let (m, s) = (m.as_array(), s.as_array());
    let (m, s) = (m.as_slice().unwrap_or(&[]), s.as_slice().unwrap_or(&[]));
    let out = run(py, || {
        let mut o = vec![0.0; m.len()];
        acq::improvement_into(kind, m, s, best, xi, &mut o)?;
        Ok(o)
    })?;
    Ok(Array1::from(out).into_pyarray(py))
}

/// Expected improvement over `best + xi` (maximisation) of a Gaussian posterior.
#[pyfunction]
#[pyo3(signature = (mean, std, best, xi=0.0))]
fn expected_improvement<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    improvement(py, Improvement::Expected, mean, std, best, xi)
}

/// log of the expected improvement, numerically stable where EI underflows (BoTorch's log_ei).
#[pyfunction]
#[pyo3(signature = (mean, std, best, xi=0.0))]
fn log_expected_improvement<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    improvement(py, Improvement::LogExpected, mean, std, best, xi)
}

/// Probability of improvement over `best + xi`.
#[pyfunction]
#[pyo3(signature = (mean, std, best, xi=0.0))]
fn probability_of_improvement<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    improvement(py, Improvement::Probability, mean, std, best, xi)
}

/// Thompson sampling over independent Gaussian marginals: index of the best sampled value.
#[pyfunction]
#[pyo3(signature = (mean, std, seed=0))]
fn thompson_sample<'py>(
    py: Python<'py>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    seed: u64,
) -> PyResult<usize> {
    let (m, s) = mean_std(mean, std)?;
    let (m, s) = (m.as_array(), s.as_array());
    let (m, s) = (m.as_slice().unwrap_or(&[]), s.as_slice().unwrap_or(&[]));
    run(py, || acq::thompson_gaussian(m, s, seed))
}

fn particle_args<'py>(
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<(
    numpy::PyReadonlyArray2<'py, f64>,
    numpy::PyReadonlyArray1<'py, f64>,
)> {
    Ok((
        array::matrix(utilities, "utilities")?,
        array::vector(weights, "weights")?,
    ))
}

/// Which particle acquisition to compute.
#[derive(Clone, Copy)]
enum PKind {
    Ucb(f64),
    Ei(f64, f64),
    Pi(f64, f64),
    Eu,
}

fn particle_acq<'py>(
    py: Python<'py>,
    kind: PKind,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let (u, w) = particle_args(utilities, weights)?;
    let a = u.as_array().ncols();
    let (u, w) = (u.as_array(), w.as_array());
    let (u, w) = (u.as_slice().unwrap_or(&[]), w.as_slice().unwrap_or(&[]));
    let out = run(py, || {
        let p = ParticleUtilities::new(u, w, a)?;
        let mut o = vec![0.0; a];
        match kind {
            PKind::Ucb(beta) => {
                let mut s = vec![0.0; a];
                p.ucb_into(beta, &mut s, &mut o)?;
            }
            PKind::Ei(best, xi) => p.expected_improvement_into(best, xi, &mut o)?,
            PKind::Pi(best, xi) => p.probability_of_improvement_into(best, xi, &mut o)?,
            PKind::Eu => p.expected_utility_into(&mut o)?,
        }
        Ok(o)
    })?;
    Ok(Array1::from(out).into_pyarray(py))
}

/// UCB of each action's utility under a particle belief: utilities (N, A), weights (N,).
#[pyfunction]
#[pyo3(signature = (utilities, weights, beta=2.0))]
fn particle_ucb<'py>(
    py: Python<'py>,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    beta: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    particle_acq(py, PKind::Ucb(beta), utilities, weights)
}

/// Expected improvement of each action under a particle belief (exact, no Gaussian assumption).
#[pyfunction]
#[pyo3(signature = (utilities, weights, best, xi=0.0))]
fn particle_expected_improvement<'py>(
    py: Python<'py>,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    particle_acq(py, PKind::Ei(best, xi), utilities, weights)
}

/// Probability of improvement of each action under a particle belief.
#[pyfunction]
#[pyo3(signature = (utilities, weights, best, xi=0.0))]
fn particle_probability_of_improvement<'py>(
    py: Python<'py>,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    best: f64,
    xi: f64,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    particle_acq(py, PKind::Pi(best, xi), utilities, weights)
}

/// Thompson sampling under a particle belief: argmax of the utilities of one particle drawn
/// with probability proportional to its weight.
#[pyfunction]
#[pyo3(signature = (utilities, weights, seed=0))]
fn particle_thompson_sample<'py>(
    py: Python<'py>,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
    seed: u64,
) -> PyResult<usize> {
    let (u, w) = particle_args(utilities, weights)?;
    let a = u.as_array().ncols();
    let (u, w) = (u.as_array(), w.as_array());
    let (u, w) = (u.as_slice().unwrap_or(&[]), w.as_slice().unwrap_or(&[]));
    run(py, || ParticleUtilities::new(u, w, a)?.thompson(seed))
}

/// The action maximising expected utility under the belief: returns (index, expected
/// utilities (A,)). utilities (N, A) per particle or per goal; weights (N,).
#[pyfunction]
fn select_action<'py>(
    py: Python<'py>,
    utilities: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    let eu = particle_acq(py, PKind::Eu, utilities, weights)?;
    let best = {
        let r = eu.readonly();
        acq::argmax(r.as_slice().unwrap_or(&[]))
    };
    (best, eu).into_py_any(py)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGoalInference>()?;
    m.add_class::<PyParticleFilter>()?;
    m.add_function(wrap_pyfunction!(_goal_inference_from_state, m)?)?;
    m.add_function(wrap_pyfunction!(systematic_resample, m)?)?;
    m.add_function(wrap_pyfunction!(stratified_resample, m)?)?;
    m.add_function(wrap_pyfunction!(residual_resample, m)?)?;
    m.add_function(wrap_pyfunction!(multinomial_resample, m)?)?;
    m.add_function(wrap_pyfunction!(rejection_resample, m)?)?;
    m.add_function(wrap_pyfunction!(ucb, m)?)?;
    m.add_function(wrap_pyfunction!(expected_improvement, m)?)?;
    m.add_function(wrap_pyfunction!(log_expected_improvement, m)?)?;
    m.add_function(wrap_pyfunction!(probability_of_improvement, m)?)?;
    m.add_function(wrap_pyfunction!(thompson_sample, m)?)?;
    m.add_function(wrap_pyfunction!(particle_ucb, m)?)?;
    m.add_function(wrap_pyfunction!(particle_expected_improvement, m)?)?;
    m.add_function(wrap_pyfunction!(particle_probability_of_improvement, m)?)?;
    m.add_function(wrap_pyfunction!(particle_thompson_sample, m)?)?;
    m.add_function(wrap_pyfunction!(select_action, m)?)?;
    Ok(())
}
