//! The closed-loop soak shared by `examples/intent_soak_check.rs` (10⁶ steps) and
//! `tests/soak.rs` (the short CI version): the default scenario's person walks endlessly
//! between the goals, observed with noise, tracker dropouts and identity-switch jumps; the
//! robot shuttles between its stations through the plant. Every decision is checked for NaN;
//! resident memory is sampled from /proc/self/statm; step latency goes into a preallocated
//! 1 µs histogram (no allocation, so the soak's own bookkeeping cannot grow the RSS).

#![allow(dead_code)] // each user takes a part

use std::time::Instant;

use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::{Leg, Scenario};
use intent_engine::intent::IntentEngine;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// Resident set size in KiB (`None` off Linux).
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// Latency histogram with 1 µs buckets up to 100 ms (overflow in the last bucket).
pub struct Histogram {
    buckets: Vec<u64>,
    pub count: u64,
    pub max_us: f64,
}

impl Histogram {
    pub fn new() -> Self {
        let mut buckets = vec![1u64; 100_001];
        // Touch every page now (a zeroed allocation is lazily mapped), so filling it later
        // does not show up as RSS growth.
        buckets.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&mut buckets);
        Self {
            buckets,
            count: 0,
            max_us: 0.0,
        }
    }

    pub fn record(&mut self, us: f64) {
        let i = (us as usize).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The `q` quantile (µs, bucket upper edge).
    pub fn quantile(&self, q: f64) -> f64 {
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            acc += c;
            if acc >= want {
                return (i + 1) as f64;
            }
        }
        self.max_us
    }
}

/// What a soak run measured.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub steps: usize,
    /// RSS after the warm-up (the first `warmup` steps), KiB.
    pub rss_after_warmup_kib: u64,
    /// RSS at the end, KiB.
    pub rss_end_kib: u64,
    /// Largest sampled RSS, KiB.
    pub rss_max_kib: u64,
    /// Step latency over all steps after the warm-up, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// p99 of the last tenth of the run (the tail after the longest running time), µs.
    pub p99_last_tenth_us: f64,
    /// Non-finite values found in commands, goal probabilities or predicted means.
    pub non_finite: usize,
    pub fallbacks: u64,
    pub dropout_steps: usize,
    pub jumps: usize,
    pub wall_s: f64,
}

impl SoakReport {
    pub fn rss_growth_kib(&self) -> i64 {
        self.rss_end_kib as i64 - self.rss_after_warmup_kib as i64
    }
}

/// Runs `steps` closed-loop steps (after `warmup` untimed ones that build every cache).
///
/// # Errors
/// Scenario or plant errors (the engine itself never fails).
pub fn run(
    steps: usize,
    warmup: usize,
    seed: u64,
) -> Result<SoakReport, Box<dyn std::error::Error>> {
    let mut scn = Scenario::default_embedded()?;
    let tc = scn.config.timing.control_period;
    let total = steps + warmup;
    let seconds = total as f64 * tc;
    let names = ["shelf", "door", "workbench"];
    let legs = (seconds / 4.0).ceil() as usize + 3;
    scn.human.legs = (0..legs)
        .map(|i| Leg {
            goal: names[i % 3].into(),
            pause_s: 0.5,
        })
        .collect();
    scn.human.dropouts.clear();
    scn.human.duration_s = seconds;
    let (path, _) = scn.human_path(total + 1);
    if cfg!(debug_assertions) {
        // An unoptimised build overruns the real-time budgets: widen them so each step runs
        // every stage (the release soak keeps the scenario's budgets).
        let t = &mut scn.config.timing;
        t.belief_budget = std::time::Duration::from_secs(1);
        t.prediction_budget = std::time::Duration::from_secs(1);
        t.solve_budget = std::time::Duration::from_secs(1);
        t.step_budget = std::time::Duration::from_secs(4);
    }
    let mut engine = IntentEngine::new(scn.config.clone())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, scn.human.observation_noise)?;
    let mut x = [4.0, 3.0, 0.0, 0.0];
    let mut wp = 0;
    engine.set_robot_goal(scn.robot.waypoints[0])?;
    let mut hist = Histogram::new();
    let mut tail = Histogram::new();
    let tail_from = warmup + steps - steps / 10;
    let (mut dropout_left, mut jump_left, mut jump) = (0usize, 0usize, [0.0, 0.0]);
    let (mut dropout_steps, mut jumps, mut non_finite) = (0usize, 0usize, 0usize);
    let mut rss_after_warmup = rss_kib().unwrap_or(0);
    let mut rss_max = rss_after_warmup;
    let sample_every = (total / 200).max(1);
    let start = Instant::now();
    for i in 1..=total {
        let t = i as f64 * tc;
        let h = path[i];
        // Faults: a dropout of 0.1-1 s every ~8 s, a 1-3 m identity-switch jump for 0.05-0.3 s
        // every ~12 s.
        if dropout_left == 0 && rng.random::<f64>() < tc / 8.0 {
            dropout_left = rng.random_range(10..100);
        }
        if jump_left == 0 && rng.random::<f64>() < tc / 12.0 {
            jump_left = rng.random_range(5..30);
            let (r, a) = (
                rng.random_range(1.0..3.0),
                rng.random_range(0.0..std::f64::consts::TAU),
            );
            jump = [r * a.cos(), r * a.sin()];
            jumps += 1;
        }
        let obs = if dropout_left > 0 {
            dropout_left -= 1;
            dropout_steps += 1;
            None
        } else {
            let (dx, dy) = if jump_left > 0 {
                jump_left -= 1;
                (jump[0], jump[1])
            } else {
                (0.0, 0.0)
            };
            Some([
                h[0] + dx + noise.sample(&mut rng),
                h[1] + dy + noise.sample(&mut rng),
            ])
        };
        let t0 = Instant::now();
        let d = engine.step(obs, &x, t);
        let us = t0.elapsed().as_secs_f64() * 1e6;
        non_finite += d.command.iter().filter(|v| !v.is_finite()).count()
            + d.goal_probabilities
                .iter()
                .filter(|v| !v.is_finite())
                .count()
            + d.predicted_mean.iter().filter(|v| !v.is_finite()).count();
        let cmd = [d.command[0], d.command[1]];
        if i > warmup {
            hist.record(us);
            if i > tail_from {
                tail.record(us);
            }
        }
        plant(&scn.config.robot, &mut x, &cmd, tc)?;
        let w = scn.robot.waypoints[wp];
        if (x[0] - w[0]).hypot(x[1] - w[1]) < scn.robot.tolerance && x[2].hypot(x[3]) < 0.2 {
            wp = (wp + 1) % scn.robot.waypoints.len();
            engine.set_robot_goal(scn.robot.waypoints[wp])?;
        }
        if i == warmup {
            rss_after_warmup = rss_kib().unwrap_or(0);
        }
        if i % sample_every == 0 {
            rss_max = rss_max.max(rss_kib().unwrap_or(0));
        }
    }
    let rss_end = rss_kib().unwrap_or(0);
    Ok(SoakReport {
        steps,
        rss_after_warmup_kib: rss_after_warmup,
        rss_end_kib: rss_end,
        rss_max_kib: rss_max.max(rss_end),
        p50_us: hist.quantile(0.5),
        p99_us: hist.quantile(0.99),
        max_us: hist.max_us,
        p99_last_tenth_us: tail.quantile(0.99),
        non_finite,
        fallbacks: engine.counters().fallbacks,
        dropout_steps,
        jumps,
        wall_s: start.elapsed().as_secs_f64(),
    })
}
