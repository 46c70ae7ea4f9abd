//! Engine telemetry: per-stage latency histograms and event counters, readable while the
//! engine steps, exported in the Prometheus text format and, optionally, over HTTP.
//!
//! # Design: recording never waits and never allocates
//!
//! [`IntentEngine::step`](super::IntentEngine::step) is the only writer; readers are
//! [`IntentEngine::telemetry`](super::IntentEngine::telemetry), a [`TelemetryHandle`] (any
//! thread) and the [`MetricsServer`] thread. The state they share sits behind an `Arc`:
//!
//! - **Counters** are `AtomicU64`s written by the single writer with a relaxed load + store (a
//!   plain `mov` on x86-64, no locked read-modify-write) and read by anyone with a relaxed load.
//! - **Latency histograms** are [`hdrhistogram`] histograms (fixed range, preallocated, so a
//!   record never allocates). They are not atomic, so they sit behind a mutex that the writer
//!   only ever *tries* to take: on success it records the step (and any steps parked earlier);
//!   when a reader holds the lock it parks the step's latencies in a fixed buffer owned by the
//!   engine and carries on. The writer therefore never blocks on a reader; a reader holds the
//!   lock only to clone the histograms (microseconds), and a park overflow (a reader holding
//!   the lock for [`PARK_CAPACITY`] consecutive steps) is counted, not hidden
//!   ([`TelemetrySnapshot::dropped_samples`]). Lock-free atomic bucket counters were the
//!   alternative; they would have meant writing our own bucket layout and quantile code instead
//!   of using HdrHistogram's, for no gain in a single-writer setting.
//!
//! Measured cost: about 0.1 µs per step, under 0.3 % of the default pipeline's step even while
//! scraped (`examples/telemetry_overhead.rs`, `docs/operations.md`).
//!
//! Histograms keep 2 significant digits (values within 1 % of the recorded latency) between
//! 1 ns and 60 s; longer latencies are clamped to 60 s. Memory: about 30 kB per stage.
//!
//! # Counters
//!
//! Counters count events of the steps recorded with telemetry on (see
//! [`EngineConfig::telemetry`](super::EngineConfig::telemetry)); the residual GP's conditioning
//! counters are sampled at each recorded step. Allocation counting is opt-in: a program that
//! installs [`CountingAllocator`] as its `#[global_allocator]` gets
//! [`TelemetrySnapshot::step_allocations`] (process-wide allocations observed during steps, so
//! other threads' allocations in that window are included; 0 is the expected value).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram as PromHistogram, LabelPair, Metric, MetricFamily,
    MetricType, Quantile, Summary,
};
use prometheus::{Encoder, TextEncoder};

use crate::error::{Error, Result};
use crate::intent::engine::{Decision, EngineCounters, FallbackReason, Stage};
use crate::mpc::SolveStatus;

/// The stages with a latency histogram, in pipeline order (`Total` is the whole step).
pub const STAGES: [Stage; 6] = [
    Stage::Belief,
    Stage::Prediction,
    Stage::Constraints,
    Stage::Solve,
    Stage::Safety,
    Stage::Total,
];

/// Fallback reason codes ([`FallbackReason::code`]), in a fixed order.
pub const FALLBACK_CODES: [&str; 8] = [
    "invalid-robot-state",
    "invalid-observation",
    "invalid-time",
    "belief-failed",
    "solver-failed",
    "non-finite-solution",
    "overrun",
    "protective-stop",
];

/// Solver statuses, in a fixed order.
pub const SOLVE_STATUSES: [SolveStatus; 7] = [
    SolveStatus::Solved,
    SolveStatus::SolvedInaccurate,
    SolveStatus::MaxIterations,
    SolveStatus::TimeLimit,
    SolveStatus::PrimalInfeasible,
    SolveStatus::DualInfeasible,
    SolveStatus::Unsolved,
];

/// Upper bounds (seconds) of the Prometheus histogram buckets (`+Inf` is added): 1 µs … 1 s,
/// 1-2.5-5 steps, covering a control step's stages from the separation check to a cold solve.
pub const BUCKET_BOUNDS: [f64; 19] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];

/// Steps whose latencies can be parked while a reader holds the histogram lock.
pub const PARK_CAPACITY: usize = 64;

const NS: usize = STAGES.len();
const HIST_MAX_NS: u64 = 60_000_000_000;

fn stage_index(s: Stage) -> usize {
    match s {
        Stage::Belief => 0,
        Stage::Prediction => 1,
        Stage::Constraints => 2,
        Stage::Solve => 3,
        Stage::Safety => 4,
        Stage::Total => 5,
    }
}

fn fallback_index(r: &FallbackReason) -> usize {
    match r {
        FallbackReason::InvalidRobotState => 0,
        FallbackReason::InvalidObservation => 1,
        FallbackReason::InvalidTime => 2,
        FallbackReason::BeliefFailed => 3,
        FallbackReason::SolverFailed(_) => 4,
        FallbackReason::NonFiniteSolution => 5,
        FallbackReason::Overrun { .. } => 6,
        FallbackReason::ProtectiveStop { .. } => 7,
    }
}

fn status_index(s: SolveStatus) -> usize {
    match s {
        SolveStatus::Solved => 0,
        SolveStatus::SolvedInaccurate => 1,
        SolveStatus::MaxIterations => 2,
        SolveStatus::TimeLimit => 3,
        SolveStatus::PrimalInfeasible => 4,
        SolveStatus::DualInfeasible => 5,
        SolveStatus::Unsolved => 6,
    }
}

/// Bit of a stage in [`StepEvents::stages`].
#[must_use]
pub(crate) const fn stage_bit(s: Stage) -> u8 {
    1 << (s as u8)
}

/// What one step did beyond its [`Decision`], gathered by the engine for the recorder.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepEvents {
    /// Stages that completed (bits from [`stage_bit`]; `Total` is always recorded).
    pub stages: u8,
    /// The solve could start from the previous solution.
    pub hot_start: bool,
    /// Keep-out rows that kept their previous normal (the QP only moves the bound).
    pub normals_reused: u32,
    /// Keep-out rows whose normal was recomputed (the row is re-condensed).
    pub normals_rebuilt: u32,
    /// The residual GP's conditioning counters (absolute), if there is one.
    pub gp: Option<(u64, u64, u64)>,
}

/// Single-writer counter (see the module docs).
#[derive(Debug, Default)]
struct Cell(AtomicU64);

impl Cell {
    #[inline]
    fn add(&self, n: u64) {
        // Only the engine writes: load + store is exact and needs no locked instruction.
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Counters {
    steps: Cell,
    fresh: Cell,
    fallbacks: [Cell; 8],
    overruns: [Cell; NS],
    solver_status: [Cell; 7],
    solver_iterations: Cell,
    hot_starts: Cell,
    observations: Cell,
    missing_observations: Cell,
    resamplings: Cell,
    reinitialisations: Cell,
    speed_limited: Cell,
    normals_reused: Cell,
    normals_rebuilt: Cell,
    gp_jitter_escalations: Cell,
    gp_duplicate_jitter: Cell,
    gp_refactors: Cell,
    dropped_samples: Cell,
    step_allocations: Cell,
}

#[derive(Debug, Clone)]
struct Hists {
    h: [Histogram<u64>; NS],
    sum_ns: [u64; NS],
}

impl Hists {
    fn new() -> Self {
        // Invariant: 1 ≤ low, 2·low ≤ high and sigfig ≤ 5 hold for these constants, the only
        // conditions under which `new_with_bounds` fails.
        let h = || {
            Histogram::new_with_bounds(1, HIST_MAX_NS, 2).expect("valid constant histogram bounds")
        };
        Self {
            h: [h(), h(), h(), h(), h(), h()],
            sum_ns: [0; NS],
        }
    }

    #[inline]
    fn record(&mut self, p: &Parked) {
        for i in 0..NS {
            if p.mask & (1 << i) != 0 {
                self.h[i].saturating_record(p.ns[i]);
                self.sum_ns[i] = self.sum_ns[i].saturating_add(p.ns[i]);
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    hists: Mutex<Hists>,
    c: Counters,
    enabled: AtomicBool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Parked {
    mask: u8,
    ns: [u64; NS],
}

/// The writer half, owned by the engine.
#[derive(Debug)]
pub(crate) struct Recorder {
    shared: Arc<Shared>,
    parked: Box<[Parked; PARK_CAPACITY]>,
    n_parked: usize,
    gp_seen: (u64, u64, u64),
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                hists: Mutex::new(Hists::new()),
                c: Counters::default(),
                enabled: AtomicBool::new(true),
            }),
            parked: Box::new([Parked::default(); PARK_CAPACITY]),
            n_parked: 0,
            gp_seen: (0, 0, 0),
        }
    }

    /// Tells readers whether recording is on (the engine decides whether to record).
    pub(crate) fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::Relaxed);
    }

    pub(crate) fn handle(&self) -> TelemetryHandle {
        TelemetryHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Records one step: `before` are the engine's counters at the step's start.
    /// Allocation-free; never waits for a reader.
    pub(crate) fn record(
        &mut self,
        d: &Decision,
        before: &EngineCounters,
        after: &EngineCounters,
        ev: &StepEvents,
    ) {
        let c = &self.shared.c;
        c.steps.add(1);
        c.fresh.add(u64::from(d.fresh));
        if let Some(r) = &d.fallback {
            c.fallbacks[fallback_index(r)].add(1);
            if let FallbackReason::Overrun { stage, .. } = r {
                c.overruns[stage_index(*stage)].add(1);
            }
        }
        if ev.stages & stage_bit(Stage::Solve) != 0 {
            c.solver_status[status_index(d.solver_status)].add(1);
            c.solver_iterations.add(d.solver_iterations as u64);
            c.hot_starts.add(u64::from(ev.hot_start));
        }
        c.observations
            .add(after.observations.wrapping_sub(before.observations));
        c.missing_observations.add(
            after
                .missing_observations
                .wrapping_sub(before.missing_observations),
        );
        c.resamplings
            .add(after.resamplings.wrapping_sub(before.resamplings));
        c.reinitialisations.add(
            after
                .reinitialisations
                .wrapping_sub(before.reinitialisations),
        );
        c.speed_limited
            .add(after.speed_limited.wrapping_sub(before.speed_limited));
        c.normals_reused.add(u64::from(ev.normals_reused));
        c.normals_rebuilt.add(u64::from(ev.normals_rebuilt));
        if let Some(g) = ev.gp {
            // Counters of a GP that was rebuilt start again from zero.
            let delta = |now: u64, seen: u64| now.saturating_sub(seen);
            c.gp_jitter_escalations.add(delta(g.0, self.gp_seen.0));
            c.gp_duplicate_jitter.add(delta(g.1, self.gp_seen.1));
            c.gp_refactors.add(delta(g.2, self.gp_seen.2));
            self.gp_seen = g;
        }

        let t = &d.timings;
        let durs = [
            t.belief,
            t.prediction,
            t.constraints,
            t.solve,
            t.safety,
            t.total,
        ];
        let mut p = Parked {
            mask: ev.stages | stage_bit(Stage::Total),
            ns: [0; NS],
        };
        for (n, dur) in p.ns.iter_mut().zip(durs) {
            *n = u64::try_from(dur.as_nanos()).unwrap_or(u64::MAX);
        }
        // `try_lock` is one compare-and-swap; it never waits.
        let guard = match self.shared.hists.try_lock() {
            Ok(g) => Some(g),
            // Readers only clone under the lock, so a reader that panicked there left the
            // histograms consistent: keep recording.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        match guard {
            Some(mut h) => {
                for q in &self.parked[..self.n_parked] {
                    h.record(q);
                }
                self.n_parked = 0;
                h.record(&p);
            }
            None => {
                // A reader holds the lock: park the step, record it next time.
                if self.n_parked < PARK_CAPACITY {
                    self.parked[self.n_parked] = p;
                    self.n_parked += 1;
                } else {
                    c.dropped_samples.add(1);
                }
            }
        }
    }

    /// Adds allocations observed during a step (see [`CountingAllocator`]).
    pub(crate) fn add_allocations(&self, n: u64) {
        self.shared.c.step_allocations.add(n);
    }
}

/// A cheap, cloneable, thread-safe reader of an engine's telemetry: take
/// [`snapshot`](TelemetryHandle::snapshot)s or Prometheus text from any thread while the engine
/// steps on its own (see [`IntentEngine::telemetry_handle`](super::IntentEngine::telemetry_handle)).
#[derive(Clone, Debug)]
pub struct TelemetryHandle {
    shared: Arc<Shared>,
}

impl TelemetryHandle {
    /// The telemetry now. Steps parked while another reader held the histograms appear at the
    /// engine's next step.
    #[must_use]
    pub fn snapshot(&self) -> TelemetrySnapshot {
        let hists = self
            .shared
            .hists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let c = &self.shared.c;
        let get = |a: &[Cell]| a.iter().map(Cell::get).collect::<Vec<_>>();
        let fb = get(&c.fallbacks);
        let ov = get(&c.overruns);
        let st = get(&c.solver_status);
        TelemetrySnapshot {
            enabled: self.shared.enabled.load(Ordering::Relaxed),
            stages: STAGES
                .iter()
                .enumerate()
                .map(|(i, &s)| StageLatency::from_hist(s, &hists.h[i], hists.sum_ns[i]))
                .collect(),
            steps: c.steps.get(),
            fresh: c.fresh.get(),
            fallbacks: FALLBACK_CODES.iter().copied().zip(fb).collect(),
            overruns: STAGES.iter().copied().zip(ov).collect(),
            solver_status: SOLVE_STATUSES.iter().copied().zip(st).collect(),
            solver_iterations: c.solver_iterations.get(),
            hot_started_solves: c.hot_starts.get(),
            observations: c.observations.get(),
            missing_observations: c.missing_observations.get(),
            resamplings: c.resamplings.get(),
            reinitialisations: c.reinitialisations.get(),
            speed_limited: c.speed_limited.get(),
            keepout_normals_reused: c.normals_reused.get(),
            keepout_normals_rebuilt: c.normals_rebuilt.get(),
            gp_jitter_escalations: c.gp_jitter_escalations.get(),
            gp_duplicate_jitter: c.gp_duplicate_jitter.get(),
            gp_refactors: c.gp_refactors.get(),
            dropped_samples: c.dropped_samples.get(),
            step_allocations: CountingAllocator::is_installed().then(|| c.step_allocations.get()),
        }
    }

    /// The telemetry in the Prometheus text exposition format (version 0.0.4).
    ///
    /// # Errors
    /// [`Error::Internal`] if the encoder rejects a metric family (a bug).
    pub fn prometheus_text(&self) -> Result<String> {
        self.snapshot().to_prometheus()
    }
}

/// Latency distribution of one stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageLatency {
    /// The stage.
    pub stage: Stage,
    /// Completed runs recorded.
    pub count: u64,
    /// Total time (exact, not from the histogram).
    pub sum: Duration,
    /// Smallest recorded value (histogram resolution: within 1 %).
    pub min: Duration,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest recorded value.
    pub max: Duration,
    /// Cumulative counts at [`BUCKET_BOUNDS`] (seconds), then `+Inf` (= `count`).
    pub buckets: Vec<(f64, u64)>,
}

impl StageLatency {
    fn from_hist(stage: Stage, h: &Histogram<u64>, sum_ns: u64) -> Self {
        let count = h.len();
        let q = |x: f64| {
            if count == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(h.value_at_quantile(x))
            }
        };
        let mut buckets: Vec<(f64, u64)> = BUCKET_BOUNDS.iter().map(|&b| (b, 0)).collect();
        buckets.push((f64::INFINITY, 0));
        for v in h.iter_recorded() {
            // Every value of an HdrHistogram bucket is within 1 % of this one.
            let s = v.value_iterated_to() as f64 * 1e-9;
            let i = BUCKET_BOUNDS.partition_point(|&b| b < s);
            buckets[i].1 += v.count_at_value();
        }
        let mut acc = 0;
        for b in &mut buckets {
            acc += b.1;
            b.1 = acc;
        }
        Self {
            stage,
            count,
            sum: Duration::from_nanos(sum_ns),
            min: if count == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(h.min())
            },
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: if count == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(h.max())
            },
            buckets,
        }
    }
}

/// A copy of an engine's telemetry (see [`IntentEngine::telemetry`](super::IntentEngine::telemetry)).
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetrySnapshot {
    /// Whether the engine records telemetry ([`EngineConfig::telemetry`](super::EngineConfig::telemetry)).
    pub enabled: bool,
    /// Per-stage latency, in [`STAGES`] order.
    pub stages: Vec<StageLatency>,
    /// Steps recorded.
    pub steps: u64,
    /// Steps that returned a fresh plan.
    pub fresh: u64,
    /// Fallbacks by reason code ([`FALLBACK_CODES`] order).
    pub fallbacks: Vec<(&'static str, u64)>,
    /// Overruns by stage ([`STAGES`] order; `Total` is the step budget).
    pub overruns: Vec<(Stage, u64)>,
    /// Solves by how they ended ([`SOLVE_STATUSES`] order).
    pub solver_status: Vec<(SolveStatus, u64)>,
    /// Solver iterations, summed.
    pub solver_iterations: u64,
    /// Solves that started from the previous solution (warm start on and the previous solve
    /// succeeded).
    pub hot_started_solves: u64,
    /// Observations assimilated.
    pub observations: u64,
    /// Steps without an observation.
    pub missing_observations: u64,
    /// Belief resampling events.
    pub resamplings: u64,
    /// Belief re-initialisations.
    pub reinitialisations: u64,
    /// Steps whose command the separation check slowed down.
    pub speed_limited: u64,
    /// Keep-out rows that kept their previous normal (cache hit: only the bound moves).
    pub keepout_normals_reused: u64,
    /// Keep-out rows whose normal was recomputed (the QP row is re-condensed).
    pub keepout_normals_rebuilt: u64,
    /// Residual-GP refactorisations that had to escalate the diagonal jitter.
    pub gp_jitter_escalations: u64,
    /// Residual-GP appended points that needed extra jitter (near-duplicates).
    pub gp_duplicate_jitter: u64,
    /// Residual-GP full refactorisations.
    pub gp_refactors: u64,
    /// Steps whose latencies were lost because a reader held the histograms for
    /// [`PARK_CAPACITY`] consecutive steps (0 in practice).
    pub dropped_samples: u64,
    /// Process-wide allocations observed during steps, when [`CountingAllocator`] is the
    /// global allocator (`None` otherwise).
    pub step_allocations: Option<u64>,
}

impl TelemetrySnapshot {
    /// The latency of `stage`.
    #[must_use]
    pub fn stage(&self, stage: Stage) -> &StageLatency {
        &self.stages[stage_index(stage)]
    }

    /// Fallbacks of every reason.
    #[must_use]
    pub fn fallbacks_total(&self) -> u64 {
        self.fallbacks.iter().map(|f| f.1).sum()
    }

    /// The count of fallback reason `code` (see [`FallbackReason::code`]; 0 for an unknown
    /// code).
    #[must_use]
    pub fn fallback_count(&self, code: &str) -> u64 {
        self.fallbacks
            .iter()
            .find(|f| f.0 == code)
            .map_or(0, |f| f.1)
    }

    /// The snapshot as Prometheus metric families (names prefixed `intent_engine_`, times in
    /// seconds), for a custom [`prometheus::core::Collector`] or registry.
    #[must_use]
    pub fn metric_families(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        // Stage latency: a histogram with cumulative buckets from the recorded distribution…
        let mut fam = family(
            "intent_engine_stage_seconds",
            "Latency of each pipeline stage (total = the whole step), seconds.",
            MetricType::HISTOGRAM,
        );
        for s in &self.stages {
            let mut h = PromHistogram::default();
            h.set_sample_count(s.count);
            h.set_sample_sum(s.sum.as_secs_f64());
            h.set_bucket(
                s.buckets
                    .iter()
                    .filter(|b| b.0.is_finite())
                    .map(|&(ub, n)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(ub);
                        b.set_cumulative_count(n);
                        b
                    })
                    .collect(),
            );
            let mut m = labelled(&[("stage", s.stage.as_str())]);
            m.set_histogram(h);
            fam.mut_metric().push(m);
        }
        out.push(fam);
        // …and the quantiles straight from the HdrHistogram as a summary, plus the max.
        let mut fam = family(
            "intent_engine_stage_latency_seconds",
            "Latency quantiles of each pipeline stage since the engine started (HdrHistogram, \
             within 1 %), seconds.",
            MetricType::SUMMARY,
        );
        for s in &self.stages {
            let mut sm = Summary::default();
            sm.set_sample_count(s.count);
            sm.set_sample_sum(s.sum.as_secs_f64());
            sm.set_quantile(
                [(0.5, s.p50), (0.95, s.p95), (0.99, s.p99)]
                    .iter()
                    .map(|&(q, v)| {
                        let mut x = Quantile::default();
                        x.set_quantile(q);
                        x.set_value(if s.count == 0 {
                            f64::NAN
                        } else {
                            v.as_secs_f64()
                        });
                        x
                    })
                    .collect(),
            );
            let mut m = labelled(&[("stage", s.stage.as_str())]);
            m.set_summary(sm);
            fam.mut_metric().push(m);
        }
        out.push(fam);
        let mut fam = family(
            "intent_engine_stage_latency_max_seconds",
            "Largest latency of each pipeline stage since the engine started, seconds.",
            MetricType::GAUGE,
        );
        for s in &self.stages {
            let mut g = Gauge::default();
            g.set_value(if s.count == 0 {
                f64::NAN
            } else {
                s.max.as_secs_f64()
            });
            let mut m = labelled(&[("stage", s.stage.as_str())]);
            m.set_gauge(g);
            fam.mut_metric().push(m);
        }
        out.push(fam);

        let mut fam = family(
            "intent_engine_telemetry_enabled",
            "1 if the engine records telemetry, 0 if it is switched off.",
            MetricType::GAUGE,
        );
        let mut g = Gauge::default();
        g.set_value(if self.enabled { 1.0 } else { 0.0 });
        let mut m = Metric::default();
        m.set_gauge(g);
        fam.mut_metric().push(m);
        out.push(fam);

        let labelled_counter = |name: &str, help: &str, key: &str, vals: &[(&str, u64)]| {
            let mut fam = family(name, help, MetricType::COUNTER);
            for &(l, v) in vals {
                let mut m = labelled(&[(key, l)]);
                m.set_counter(counter(v));
                fam.mut_metric().push(m);
            }
            fam
        };
        let fb: Vec<(&str, u64)> = self.fallbacks.clone();
        out.push(labelled_counter(
            "intent_engine_fallbacks_total",
            "Steps that returned the safe fallback command, by reason.",
            "reason",
            &fb,
        ));
        let ov: Vec<(&str, u64)> = self.overruns.iter().map(|o| (o.0.as_str(), o.1)).collect();
        out.push(labelled_counter(
            "intent_engine_overruns_total",
            "Stage budget overruns (each also counted as an overrun fallback), by stage.",
            "stage",
            &ov,
        ));
        let st: Vec<(&str, u64)> = self
            .solver_status
            .iter()
            .map(|o| (o.0.as_str(), o.1))
            .collect();
        out.push(labelled_counter(
            "intent_engine_solver_status_total",
            "MPC solves by how they ended.",
            "status",
            &st,
        ));
        for (name, help, v) in [
            ("intent_engine_steps_total", "Steps recorded.", self.steps),
            (
                "intent_engine_fresh_decisions_total",
                "Steps that returned a fresh MPC plan.",
                self.fresh,
            ),
            (
                "intent_engine_solver_iterations_total",
                "MPC solver iterations, summed over solves.",
                self.solver_iterations,
            ),
            (
                "intent_engine_hot_started_solves_total",
                "MPC solves started from the previous solution.",
                self.hot_started_solves,
            ),
            (
                "intent_engine_observations_total",
                "Observations of the person assimilated.",
                self.observations,
            ),
            (
                "intent_engine_missing_observations_total",
                "Steps without an observation of the person.",
                self.missing_observations,
            ),
            (
                "intent_engine_belief_resamplings_total",
                "Particle-filter resampling events.",
                self.resamplings,
            ),
            (
                "intent_engine_belief_reinitialisations_total",
                "Belief re-initialisations (weights collapsed or the person re-appeared).",
                self.reinitialisations,
            ),
            (
                "intent_engine_speed_limited_total",
                "Steps whose command speed-and-separation monitoring slowed down.",
                self.speed_limited,
            ),
            (
                "intent_engine_keepout_normal_reuses_total",
                "Keep-out rows that kept their previous normal (only the bound moves).",
                self.keepout_normals_reused,
            ),
            (
                "intent_engine_keepout_normal_rebuilds_total",
                "Keep-out rows whose normal was recomputed (the row is re-condensed).",
                self.keepout_normals_rebuilt,
            ),
            (
                "intent_engine_gp_jitter_escalations_total",
                "Residual-GP refactorisations that escalated the diagonal jitter.",
                self.gp_jitter_escalations,
            ),
            (
                "intent_engine_gp_duplicate_jitter_total",
                "Residual-GP appended points that needed extra jitter (near-duplicates).",
                self.gp_duplicate_jitter,
            ),
            (
                "intent_engine_gp_refactors_total",
                "Residual-GP full refactorisations.",
                self.gp_refactors,
            ),
            (
                "intent_engine_telemetry_dropped_samples_total",
                "Steps whose latencies were dropped because a reader held the histograms.",
                self.dropped_samples,
            ),
        ] {
            let mut fam = family(name, help, MetricType::COUNTER);
            let mut m = Metric::default();
            m.set_counter(counter(v));
            fam.mut_metric().push(m);
            out.push(fam);
        }
        if let Some(a) = self.step_allocations {
            let mut fam = family(
                "intent_engine_step_allocations_total",
                "Process-wide heap allocations observed during steps (CountingAllocator).",
                MetricType::COUNTER,
            );
            let mut m = Metric::default();
            m.set_counter(counter(a));
            fam.mut_metric().push(m);
            out.push(fam);
        }
        out
    }

    /// The snapshot in the Prometheus text exposition format (version 0.0.4), encoded by the
    /// `prometheus` crate.
    ///
    /// # Errors
    /// [`Error::Internal`] if the encoder rejects a metric family (a bug).
    ///
    /// ```
    /// use intent_engine::belief::Goal;
    /// use intent_engine::intent::{EngineConfig, IntentEngine, Workspace};
    /// let ws = Workspace { x_min: 0.0, x_max: 6.0, y_min: 0.0, y_max: 4.0 };
    /// let mut engine = IntentEngine::new(EngineConfig::new(vec![Goal::point(5.0, 3.0)], ws))?;
    /// engine.step(Some([1.0, 1.0]), &[3.0, 2.0, 0.0, 0.0], 0.01);
    /// let text = engine.telemetry().to_prometheus()?;
    /// assert!(text.contains("intent_engine_stage_seconds_count{stage=\"total\"} 1"));
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn to_prometheus(&self) -> Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.metric_families(), &mut buf)
            .map_err(|e| Error::Internal(format!("prometheus encoder: {e}")))?;
        String::from_utf8(buf).map_err(|e| Error::Internal(e.to_string()))
    }
}

fn family(name: &str, help: &str, t: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(t);
    f
}

fn labelled(labels: &[(&str, &str)]) -> Metric {
    let mut m = Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|&(k, v)| {
                let mut l = LabelPair::default();
                l.set_name(k.to_owned());
                l.set_value(v.to_owned());
                l
            })
            .collect(),
    );
    m
}

fn counter(v: u64) -> Counter {
    let mut c = Counter::default();
    c.set_value(v as f64);
    c
}

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATOR_INSTALLED: AtomicBool = AtomicBool::new(false);

/// A global allocator that forwards to the system allocator and counts allocations
/// process-wide, so engine telemetry can report allocations made during steps
/// ([`TelemetrySnapshot::step_allocations`]). Opt-in, for tests and soak runs: each allocation
/// pays one atomic increment.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: intent_engine::intent::telemetry::CountingAllocator =
///     intent_engine::intent::telemetry::CountingAllocator;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    /// Allocations (and reallocations) made through this allocator so far.
    #[must_use]
    pub fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
    }

    /// Whether this allocator has served an allocation (i.e. is the global allocator).
    #[must_use]
    pub fn is_installed() -> bool {
        ALLOCATOR_INSTALLED.load(Ordering::Relaxed)
    }

    #[inline]
    fn count() {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if !ALLOCATOR_INSTALLED.load(Ordering::Relaxed) {
            ALLOCATOR_INSTALLED.store(true, Ordering::Relaxed);
        }
    }
}

// SAFETY: forwards every call to the system allocator unchanged, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A small HTTP server answering `GET /metrics` with an engine's telemetry in the Prometheus
/// text format, on a background thread bound to the loopback interface (127.0.0.1) only.
/// It reads through a [`TelemetryHandle`], so it never needs the engine (or, in Python, the
/// GIL). Stops on [`stop`](MetricsServer::stop) or when dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

impl MetricsServer {
    /// Binds `127.0.0.1:port` (`0` picks a free ephemeral port; see
    /// [`port`](MetricsServer::port)) and serves `handle`'s telemetry at `/metrics`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `port` when it cannot be bound (in use, or privileged),
    /// with the operating system's reason; [`Error::Internal`] if the thread cannot start.
    ///
    /// ```
    /// use intent_engine::belief::Goal;
    /// use intent_engine::intent::{EngineConfig, IntentEngine, Workspace};
    /// use std::io::{Read, Write};
    /// let ws = Workspace { x_min: 0.0, x_max: 6.0, y_min: 0.0, y_max: 4.0 };
    /// let engine = IntentEngine::new(EngineConfig::new(vec![Goal::point(5.0, 3.0)], ws))?;
    /// let server = engine.serve_metrics(0)?;
    /// let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    /// s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    /// let mut body = String::new();
    /// s.read_to_string(&mut body).unwrap();
    /// assert!(body.contains("# TYPE intent_engine_stage_seconds histogram"));
    /// server.stop();
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn start(handle: TelemetryHandle, port: u16) -> Result<Self> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).map_err(|e| {
                Error::invalid_value("port", format_args!("cannot bind 127.0.0.1:{port}: {e}"))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Internal(e.to_string()))?
            .port();
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::Internal(format!("metrics server: {e}")))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("intent-metrics-{bound}"))
                .spawn(move || serve(&server, &stop, &handle))
                .map_err(|e| Error::Internal(format!("metrics server thread: {e}")))?
        };
        Ok(Self {
            server,
            stop,
            thread: Some(thread),
            port: bound,
        })
    }

    /// The bound port (the ephemeral one when started with port 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scrape URL, `http://127.0.0.1:PORT/metrics`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// Whether the server thread is still running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops serving and joins the serving thread; the port is released moments later (when
    /// `tiny_http`'s accept thread notices).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            // A panic in the server thread has already been reported on stderr.
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("port", &self.port)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, handle: &TelemetryHandle) {
    while !stop.load(Ordering::Acquire) {
        let req = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break, // unblocked or the listener failed
        };
        let path = req.url().split('?').next().unwrap_or("");
        let resp = if *req.method() != tiny_http::Method::Get {
            tiny_http::Response::from_string("method not allowed\n").with_status_code(405)
        } else if path != "/metrics" {
            tiny_http::Response::from_string("not found; try /metrics\n").with_status_code(404)
        } else {
            match handle.prometheus_text() {
                Ok(text) => {
                    let r = tiny_http::Response::from_string(text);
                    match tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        prometheus::TEXT_FORMAT.as_bytes(),
                    ) {
                        Ok(h) => r.with_header(h),
                        Err(()) => r,
                    }
                }
                Err(e) => tiny_http::Response::from_string(format!("{e}\n")).with_status_code(500),
            }
        };
        // A client that hung up is not the server's problem.
        let _ = req.respond(resp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::engine::{HumanStatus, StageTimings};

    fn test_decision() -> Decision {
        Decision {
            t: 0.0,
            command: vec![0.0; 2],
            fresh: true,
            fallback: None,
            human: HumanStatus::Unseen,
            goal_probabilities: vec![1.0],
            predicted_mean: vec![],
            predicted_cov: vec![],
            goal_means: vec![],
            samples: vec![],
            robot_plan: vec![],
            separation: f64::INFINITY,
            protective_distance: 0.0,
            speed_limited: false,
            predicted_min_separation: f64::INFINITY,
            solver_status: SolveStatus::Unsolved,
            solver_iterations: 0,
            timings: StageTimings::default(),
        }
    }

    #[test]
    fn quantiles_match_a_sorted_reference() {
        let mut rec = Recorder::new();
        let mut vals: Vec<u64> = Vec::new();
        // A skewed distribution: mostly 50-150 µs with a tail up to 5 ms.
        let mut x: u64 = 12345;
        for i in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let base = 50_000 + (x >> 33) % 100_000;
            let v = if i % 97 == 0 { base * 30 } else { base };
            vals.push(v);
            let mut d = test_decision();
            d.timings.total = Duration::from_nanos(v);
            rec.record(
                &d,
                &EngineCounters::default(),
                &EngineCounters::default(),
                &StepEvents::default(),
            );
        }
        vals.sort_unstable();
        let snap = rec.handle().snapshot();
        let s = snap.stage(Stage::Total);
        assert_eq!(s.count, 5000);
        assert_eq!(s.sum.as_nanos() as u64, vals.iter().sum::<u64>());
        let rank = |q: f64| vals[((q * vals.len() as f64).ceil() as usize).max(1) - 1] as f64;
        for (q, got) in [(0.5, s.p50), (0.95, s.p95), (0.99, s.p99)] {
            let want = rank(q);
            let rel = (got.as_nanos() as f64 - want).abs() / want;
            assert!(rel < 0.01, "q={q}: {got:?} vs {want} ns");
        }
        let rel = (s.max.as_nanos() as f64 - *vals.last().unwrap() as f64).abs()
            / *vals.last().unwrap() as f64;
        assert!(rel < 0.01);
        // Buckets: cumulative, ending at the count, and each within the resolution of a
        // direct count.
        for w in s.buckets.windows(2) {
            assert!(w[0].1 <= w[1].1);
        }
        assert_eq!(s.buckets.last().unwrap().1, 5000);
        for &(ub, n) in &s.buckets[..s.buckets.len() - 1] {
            let lo = vals.partition_point(|&v| (v as f64) * 1.01 <= ub * 1e9) as u64;
            let hi = vals.partition_point(|&v| (v as f64) * 0.99 <= ub * 1e9) as u64;
            assert!(
                (lo..=hi).contains(&n),
                "bucket {ub}: {n} not in {lo}..={hi}"
            );
        }
        // Stages that did not complete are not recorded.
        assert_eq!(snap.stage(Stage::Solve).count, 0);
    }

    #[test]
    fn a_reader_holding_the_lock_never_blocks_the_writer() {
        let mut rec = Recorder::new();
        let h = rec.handle();
        let d = test_decision();
        let z = EngineCounters::default();
        {
            let _guard = h.shared.hists.lock().unwrap();
            for _ in 0..PARK_CAPACITY + 3 {
                rec.record(&d, &z, &z, &StepEvents::default());
            }
        }
        let s = h.snapshot();
        assert_eq!(s.steps, PARK_CAPACITY as u64 + 3);
        assert_eq!(s.dropped_samples, 3);
        assert_eq!(s.stage(Stage::Total).count, 0); // parked, not yet flushed
        rec.record(&d, &z, &z, &StepEvents::default());
        let s = h.snapshot();
        assert_eq!(s.stage(Stage::Total).count, PARK_CAPACITY as u64 + 1);
    }

    #[test]
    fn a_port_in_use_is_a_clear_error() {
        let rec = Recorder::new();
        let a = MetricsServer::start(rec.handle(), 0).unwrap();
        let e = MetricsServer::start(rec.handle(), a.port()).unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        assert!(a.is_running());
        let port = a.port();
        a.stop();
        // Released (tiny_http's accept thread lets go of the socket asynchronously, within
        // moments): the port can be bound again.
        let mut again = MetricsServer::start(rec.handle(), port);
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            again = MetricsServer::start(rec.handle(), port);
        }
        again.unwrap().stop();
    }
}
