//! Load test: many engines (one per person) stepped at their control rate on every core.
//!
//! [`run_load`] gives each of `engines` engines its own simulated person and robot (the
//! scenario's scripted walk from [`Scenario::human_path`] with per-engine tracking noise and
//! start offset, the robot integrated from the engine's commands as in
//! [`simulate`](super::scenario::simulate)) and spreads them over `threads` OS threads. Every
//! engine has a release time each control period; releases are staggered evenly over the
//! period (people's sensors are not synchronised), each thread serves its engines in release
//! order and sleeps when it is ahead. A decision's **latency** is its completion time minus its
//! release time, so it includes the wait behind the other engines of the thread: the figure a
//! robot sees under load. A decision **misses** its deadline when its latency exceeds
//! `deadline`; releases the thread never reached before the end of the run count as missed too.
//!
//! [`capacity`] searches the largest number of engines whose missed fraction stays within
//! `max_miss_fraction`: doubling until a trial fails, then bisection.
//!
//! Everything is allocated before the clock starts (engines, paths, latency buffers); the
//! measured loop only steps engines and writes into preallocated buffers.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{check_positive, Error, Result};
use crate::intent::engine::IntentEngine;
use crate::intent::robot::simulate as plant;
use crate::intent::scenario::{Percentiles, Scenario};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadSettings {
    /// Number of engines (simulated people), ≥ 1.
    pub engines: usize,
    /// Wall-clock length of the run (s, > 0).
    pub seconds: f64,
    /// Control rate per engine (Hz); `None` = the scenario's control rate.
    pub rate_hz: Option<f64>,
    /// Deadline of a decision after its release.
    pub deadline: Duration,
    /// Worker threads; 0 = every core ([`std::thread::available_parallelism`]).
    pub threads: usize,
    /// The scenario every engine runs (its person script, robot and engine configuration).
    pub scenario: Scenario,
}

impl LoadSettings {
    /// `engines` engines of the embedded default scenario for `seconds` at its control rate
    /// (100 Hz) with a 10 ms deadline on every core.
    ///
    /// # Errors
    /// Never for the shipped scenario (see [`Scenario::default_embedded`]).
    pub fn new(engines: usize, seconds: f64) -> Result<Self> {
        Ok(Self {
            engines,
            seconds,
            rate_hz: None,
            deadline: Duration::from_millis(10),
            threads: 0,
            scenario: Scenario::default_embedded()?,
        })
    }

    fn rate(&self) -> f64 {
        self.rate_hz
            .unwrap_or(1.0 / self.scenario.config.timing.control_period)
    }

    fn thread_count(&self) -> usize {
        let t = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        } else {
            self.threads
        };
        t.min(self.engines).max(1)
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for zero engines, a non-positive or non-finite duration, rate
    /// or deadline, or a run longer than a day.
    pub fn validate(&self) -> Result<()> {
        if self.engines == 0 {
            return Err(Error::invalid_value("engines", "must be >= 1"));
        }
        check_positive("seconds", self.seconds)?;
        if self.seconds > 86_400.0 {
            return Err(Error::invalid_value(
                "seconds",
                format_args!("at most one day, got {}", self.seconds),
            ));
        }
        check_positive("rate_hz", self.rate())?;
        if self.deadline.is_zero() {
            return Err(Error::invalid_value("deadline", "must be > 0"));
        }
        Ok(())
    }
}

/// What a load run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Engines driven.
    pub engines: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Control rate per engine (Hz).
    pub rate_hz: f64,
    /// The deadline.
    pub deadline: Duration,
    /// Measured wall-clock length (s).
    pub wall_s: f64,
    /// Decisions released (scheduled) during the run.
    pub released: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Decisions per second sustained (decisions / wall time).
    pub decisions_per_second: f64,
    /// The offered load: engines × rate.
    pub target_per_second: f64,
    /// Decisions later than the deadline plus releases never served.
    pub missed: u64,
    /// `missed / released`.
    pub missed_fraction: f64,
    /// Latency after release (µs; includes waiting behind the thread's other engines).
    pub latency: Percentiles,
    /// The engines' own step time (µs; `Decision::timings.total`).
    pub compute: Percentiles,
    /// Decisions that carried the safe fallback (any reason, e.g. a stage overrun).
    pub fallbacks: u64,
}

impl LoadReport {
    /// Whether the run met the deadline: `missed_fraction <= max_miss_fraction`.
    #[must_use]
    pub fn meets(&self, max_miss_fraction: f64) -> bool {
        self.missed_fraction <= max_miss_fraction
    }
}

/// One simulated person + robot + engine.
struct Unit {
    engine: IntentEngine,
    path: Vec<[f64; 2]>,
    cursor: usize,
    x: [f64; 4],
    x0: [f64; 4],
    wp: usize,
    rng: ChaCha8Rng,
}

struct Worker {
    units: Vec<Unit>,
    /// Release offset of each unit within the period.
    phase: Vec<Duration>,
    latency: Vec<Duration>,
    compute: Vec<Duration>,
    released: u64,
    fallbacks: u64,
    missed: u64,
}

/// Runs the load test.
///
/// # Errors
/// [`LoadSettings::validate`]'s errors; the engine's construction errors; an error from the
/// robot simulation (the scenario's robot must be a built-in model).
///
/// ```
/// use intent_engine::intent::loadtest::{run_load, LoadSettings};
/// let mut s = LoadSettings::new(2, 0.2)?; // 2 engines for 0.2 s at 100 Hz
/// s.deadline = std::time::Duration::from_secs(1);
/// let report = run_load(&s)?;
/// println!("{:.0} decisions/s, p99 {:.0} µs, missed {}",
///          report.decisions_per_second, report.latency.p99, report.missed);
/// assert!(report.decisions > 0 && report.decisions <= report.released);
/// # Ok::<(), intent_engine::Error>(())
/// ```
pub fn run_load(s: &LoadSettings) -> Result<LoadReport> {
    s.validate()?;
    let scn = &s.scenario;
    let rate = s.rate();
    let period = Duration::from_secs_f64(1.0 / rate);
    let threads = s.thread_count();
    let tc = scn.config.timing.control_period;
    let steps = (scn.human.duration_s / tc).round().max(1.0) as usize;
    let (path, _) = scn.human_path(steps);
    let noise = Normal::new(0.0, scn.human.observation_noise)
        .map_err(|e| Error::invalid_value("observation_noise", format_args!("{e}")))?;
    let ticks = (s.seconds * rate).ceil() as usize + 1;
    let x0 = [
        scn.robot.state[0],
        scn.robot.state[1],
        scn.robot.state[2],
        scn.robot.state[3],
    ];
    let mut workers: Vec<Worker> = Vec::with_capacity(threads);
    for w in 0..threads {
        let mine: Vec<usize> = (w..s.engines).step_by(threads).collect();
        let mut units = Vec::with_capacity(mine.len());
        for &i in &mine {
            let mut cfg = scn.config.clone();
            cfg.human.seed = cfg.human.seed.wrapping_add(i as u64);
            let mut engine = IntentEngine::new(cfg)?;
            engine.set_robot_goal(scn.robot.waypoints[0])?;
            units.push(Unit {
                engine,
                path: path.clone(),
                // Different people are at different points of their walk.
                cursor: (i * 97) % path.len(),
                x: x0,
                x0,
                wp: 0,
                rng: ChaCha8Rng::seed_from_u64(scn.human.seed ^ 0x10AD ^ (i as u64) << 20),
            });
        }
        let n = units.len();
        // Engine i is released at (i / engines) of the period: even staggering over all.
        let phase = mine
            .iter()
            .map(|&i| period.mul_f64(i as f64 / s.engines as f64))
            .collect();
        workers.push(Worker {
            units,
            phase,
            latency: Vec::with_capacity(n * ticks),
            compute: Vec::with_capacity(n * ticks),
            released: 0,
            fallbacks: 0,
            missed: 0,
        });
    }
    let obs_every = ((1.0 / scn.human.rate_hz) / tc).round().max(1.0) as usize;
    let run_for = Duration::from_secs_f64(s.seconds);
    let start = Instant::now() + Duration::from_millis(5);
    let end = start + run_for;
    let results: Vec<Result<()>> = std::thread::scope(|sc| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|w| {
                let scn = &*scn;
                let noise = &noise;
                sc.spawn(move || drive(w, scn, noise, start, end, period, s.deadline, obs_every))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::invalid_value("loadtest", "a worker panicked")))
            })
            .collect()
    });
    let wall = start.elapsed().as_secs_f64().max(1e-9);
    for r in results {
        r?;
    }
    let mut latency = Vec::new();
    let mut compute = Vec::new();
    let (mut released, mut missed, mut fallbacks) = (0, 0, 0);
    for w in &workers {
        latency.extend_from_slice(&w.latency);
        compute.extend_from_slice(&w.compute);
        released += w.released;
        missed += w.missed;
        fallbacks += w.fallbacks;
    }
    let decisions = latency.len() as u64;
    Ok(LoadReport {
        engines: s.engines,
        threads,
        rate_hz: rate,
        deadline: s.deadline,
        wall_s: wall,
        released,
        decisions,
        decisions_per_second: decisions as f64 / wall,
        target_per_second: s.engines as f64 * rate,
        missed,
        missed_fraction: if released == 0 {
            0.0
        } else {
            missed as f64 / released as f64
        },
        latency: Percentiles::of(&latency),
        compute: Percentiles::of(&compute),
        fallbacks,
    })
}

/// One worker thread's loop. No allocation: every buffer was sized for the run.
#[allow(clippy::too_many_arguments)]
fn drive(
    w: &mut Worker,
    scn: &Scenario,
    noise: &Normal<f64>,
    start: Instant,
    end: Instant,
    period: Duration,
    deadline: Duration,
    obs_every: usize,
) -> Result<()> {
    let tc = scn.config.timing.control_period;
    let model = &scn.config.robot;
    let mut tick: u32 = 0;
    'run: loop {
        let base = start + period * tick;
        for (u, &phase) in w.units.iter_mut().zip(&w.phase) {
            let release = base + phase;
            if release >= end {
                break 'run;
            }
            w.released += 1;
            let now = Instant::now();
            if now >= end {
                // Released but never served before the end: a missed decision.
                w.missed += 1;
                continue;
            }
            if now < release {
                std::thread::sleep(release - now);
            }
            // Simulated time advances by the control period per step, whatever the rate.
            let t = f64::from(tick + 1) * tc;
            let truth = u.path[u.cursor];
            let obs = (tick as usize).is_multiple_of(obs_every).then(|| {
                [
                    truth[0] + noise.sample(&mut u.rng),
                    truth[1] + noise.sample(&mut u.rng),
                ]
            });
            let d = u.engine.step(obs, &u.x, t);
            let done = Instant::now();
            let lat = done.saturating_duration_since(release);
            w.latency.push(lat);
            w.compute.push(d.timings.total);
            if lat > deadline {
                w.missed += 1;
            }
            if d.fallback.is_some() {
                w.fallbacks += 1;
            }
            plant(model, &mut u.x, &d.command, tc)?;
            let wp = scn.robot.waypoints[u.wp];
            if (u.x[0] - wp[0]).hypot(u.x[1] - wp[1]) < scn.robot.tolerance
                && u.x[2].hypot(u.x[3]) < 0.2
            {
                u.wp = (u.wp + 1) % scn.robot.waypoints.len();
                u.engine.set_robot_goal(scn.robot.waypoints[u.wp])?;
            }
            u.cursor += 1;
            if u.cursor == u.path.len() {
                // The walk is over: a new person enters (a new session).
                u.cursor = 0;
                u.x = u.x0;
                u.engine.reset();
            }
        }
        tick += 1;
    }
    Ok(())
}

/// The result of a capacity search.
#[derive(Clone, Debug, PartialEq)]
pub struct Capacity {
    /// The largest engine count that met the deadline (0 when even one engine failed).
    pub engines: usize,
    /// Every trial, in the order run.
    pub trials: Vec<LoadReport>,
}

/// Finds the largest number of engines (≤ `max_engines`) whose run of `base.seconds` keeps
/// the missed fraction within `max_miss_fraction`: 1, 2, 4, … until a trial fails, then
/// bisection between the last pass and the first failure. `base.engines` is ignored.
///
/// # Errors
/// [`run_load`]'s errors; [`Error::InvalidValue`] for `max_engines == 0` or a fraction outside
/// `[0, 1]`.
///
/// ```
/// use intent_engine::intent::loadtest::{capacity, LoadSettings};
/// let mut s = LoadSettings::new(1, 0.1)?; // trials of 0.1 s
/// s.rate_hz = Some(10.0);
/// s.deadline = std::time::Duration::from_secs(1);
/// let c = capacity(&s, 2, 0.01)?;
/// assert_eq!(c.engines, 2); // an easy load: the search stops at max_engines
/// assert_eq!(c.trials.len(), 2);
/// # Ok::<(), intent_engine::Error>(())
/// ```
pub fn capacity(
    base: &LoadSettings,
    max_engines: usize,
    max_miss_fraction: f64,
) -> Result<Capacity> {
    if max_engines == 0 {
        return Err(Error::invalid_value("max_engines", "must be >= 1"));
    }
    if !(0.0..=1.0).contains(&max_miss_fraction) {
        return Err(Error::invalid_value(
            "max_miss_fraction",
            format_args!("must be in [0, 1], got {max_miss_fraction}"),
        ));
    }
    let mut trials = Vec::new();
    let trial = |n: usize, trials: &mut Vec<LoadReport>| -> Result<bool> {
        let mut s = base.clone();
        s.engines = n;
        let r = run_load(&s)?;
        let ok = r.meets(max_miss_fraction);
        trials.push(r);
        Ok(ok)
    };
    let (mut good, mut bad) = (0usize, None);
    let mut n = 1usize;
    loop {
        if trial(n, &mut trials)? {
            good = n;
            if n == max_engines {
                break;
            }
            n = (n * 2).min(max_engines);
        } else {
            bad = Some(n);
            break;
        }
    }
    if let Some(mut hi) = bad {
        while hi - good > 1 {
            let mid = good + (hi - good) / 2;
            if trial(mid, &mut trials)? {
                good = mid;
            } else {
                hi = mid;
            }
        }
    }
    Ok(Capacity {
        engines: good,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_run_is_sane() {
        let mut s = LoadSettings::new(3, 0.3).unwrap();
        s.threads = 2;
        s.deadline = Duration::from_secs(1);
        let r = run_load(&s).unwrap();
        assert_eq!(r.threads, 2);
        // 3 engines at 100 Hz for 0.3 s: about 90 releases.
        assert!((60..=100).contains(&r.released), "{r:?}");
        assert!(r.decisions > 0 && r.decisions <= r.released);
        assert_eq!(
            r.missed,
            r.released - r.decisions,
            "1 s deadline: only unserved miss"
        );
        assert!(r.latency.p50 > 0.0 && r.latency.p50 <= r.latency.p99);
        assert!(r.latency.p99 <= r.latency.max);
        assert!(r.compute.p50 > 0.0);
    }

    #[test]
    fn impossible_deadline_misses_everything() {
        let mut s = LoadSettings::new(2, 0.2).unwrap();
        s.threads = 1;
        s.deadline = Duration::from_nanos(1);
        let r = run_load(&s).unwrap();
        assert_eq!(r.missed, r.released);
        assert!(!r.meets(0.5));
        let c = capacity(&s, 4, 0.0).unwrap();
        assert_eq!(c.engines, 0);
        assert_eq!(c.trials.len(), 1);
    }

    #[test]
    fn rejects_bad_settings() {
        let mut s = LoadSettings::new(0, 1.0).unwrap();
        assert!(run_load(&s).is_err());
        s.engines = 1;
        s.seconds = f64::NAN;
        assert!(run_load(&s).is_err());
        s.seconds = 1.0;
        s.rate_hz = Some(-1.0);
        assert!(run_load(&s).is_err());
        s.rate_hz = None;
        assert!(capacity(&s, 0, 0.01).is_err());
        assert!(capacity(&s, 2, 1.5).is_err());
    }
}
