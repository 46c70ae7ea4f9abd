//! Latency and throughput of `IntentEngine::step` at the default sizes (the embedded default
//! scenario: 1000 particles, 3 goals, horizon 20, chance keep-outs, a double-integrator robot
//! at 100 Hz), in a closed loop fed by the scenario's scripted person.
//!
//! ```text
//! cargo run --release --example intent_bench [STEPS] [ENGINES]
//! ```
//!
//! Prints, on one thread over `STEPS` (default 6000) closed-loop steps, the step latency
//! p50/p95/p99/max and each stage's share of the mean step; then decisions per second of
//! `ENGINES` (default 64) engines side by side on one thread and on all threads (rayon).

use std::time::{Duration, Instant};

use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::{Percentiles, Scenario};
use intent_engine::intent::{IntentEngine, StageTimings};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Reads one stage's time.
type Stage = fn(&StageTimings) -> Duration;

/// One engine in a closed loop with the scenario's person and a simulated robot; the person's
/// script restarts (with the engine reset) when it ends.
struct Loop {
    scn: Scenario,
    engine: IntentEngine,
    obs: Vec<Option<[f64; 2]>>,
    x: [f64; 4],
    i: usize,
    wp: usize,
    t: f64,
}

impl Loop {
    fn new(scn: &Scenario, seed: u64, phase: f64) -> Self {
        let mut cfg = scn.config.clone();
        cfg.human.seed = seed;
        let tc = cfg.timing.control_period;
        let steps = (scn.human.duration_s / tc).round() as usize;
        let (path, _) = scn.human_path(steps);
        let every = ((1.0 / scn.human.rate_hz) / tc).round().max(1.0) as usize;
        let noise = Normal::new(0.0, scn.human.observation_noise).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let obs = (0..=steps)
            .map(|i| {
                let t = i as f64 * tc;
                let dropped = scn.human.dropouts.iter().any(|d| t >= d[0] && t < d[1]);
                (i % every == 0 && !dropped).then(|| {
                    [
                        path[i][0] + noise.sample(&mut rng),
                        path[i][1] + noise.sample(&mut rng),
                    ]
                })
            })
            .collect();
        let mut l = Self {
            engine: IntentEngine::new(cfg).unwrap(),
            scn: scn.clone(),
            obs,
            x: [0.0; 4],
            i: 0,
            wp: 0,
            t: 0.0,
        };
        l.restart();
        // Start part-way through the script so that engines side by side differ.
        let skip = (phase * steps as f64) as usize;
        for _ in 0..skip {
            l.step();
        }
        l
    }

    fn restart(&mut self) {
        let s = &self.scn.robot.state;
        self.x = [s[0], s[1], s[2], s[3]];
        self.i = 0;
        self.wp = 0;
        self.engine.reset();
        self.engine
            .set_robot_goal(self.scn.robot.waypoints[0])
            .unwrap();
    }

    fn step(&mut self) -> StageTimings {
        self.i += 1;
        if self.i >= self.obs.len() {
            self.restart();
            self.i = 1;
        }
        let tc = self.scn.config.timing.control_period;
        self.t += tc;
        let d = self.engine.step(self.obs[self.i], &self.x, self.t);
        let timings = d.timings;
        plant(&self.scn.config.robot, &mut self.x, &d.command, tc).unwrap();
        let w = self.scn.robot.waypoints[self.wp];
        let x = &self.x;
        if (x[0] - w[0]).hypot(x[1] - w[1]) < self.scn.robot.tolerance && x[2].hypot(x[3]) < 0.2 {
            self.wp = (self.wp + 1) % self.scn.robot.waypoints.len();
            self.engine
                .set_robot_goal(self.scn.robot.waypoints[self.wp])
                .unwrap();
        }
        timings
    }
}

/// CPU time of all this process's threads so far (s), from `/proc/self/task/*/schedstat`
/// (Linux; `None` elsewhere). Unlike wall time it does not count time the threads spent
/// pre-empted, so the per-core figures hold on a busy shared machine too.
fn cpu_s() -> Option<f64> {
    let mut ns = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().map_or(6000, |s| s.parse().unwrap());
    let engines: usize = args.next().map_or(64, |s| s.parse().unwrap());
    let scn = Scenario::default_embedded().unwrap();
    let c = &scn.config;
    println!(
        "default sizes: {} particles, {} goals, horizon {} x {} s, {:?} keep-outs, {} samples, control {:.0} Hz, observations {:.0} Hz",
        c.human.n_particles,
        c.scene.goals.len(),
        c.timing.horizon,
        c.timing.plan_dt,
        c.safety.keepout,
        c.samples,
        1.0 / c.timing.control_period,
        scn.human.rate_hz
    );

    // 1. One engine, one thread.
    let mut l = Loop::new(&scn, 7, 0.0);
    for _ in 0..500 {
        l.step();
    }
    let before = l.engine.counters();
    let mut all: Vec<StageTimings> = Vec::with_capacity(steps);
    let cpu0 = cpu_s();
    let wall = Instant::now();
    for _ in 0..steps {
        all.push(l.step());
    }
    let wall = wall.elapsed();
    let cpu = cpu_s().zip(cpu0).map(|(a, b)| a - b);
    let after = l.engine.counters();
    let pick = |f: Stage| -> Vec<Duration> { all.iter().map(f).collect() };
    let total = Percentiles::of(&pick(|t| t.total));
    println!(
        "\none engine, one thread, {steps} closed-loop steps ({:.1} s of simulated time):",
        steps as f64 * c.timing.control_period
    );
    println!(
        "  step latency (µs): p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
        total.p50, total.p95, total.p99, total.max, total.mean
    );
    println!(
        "  {:<12} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "stage", "mean µs", "share", "p50", "p99", "max"
    );
    let stages: [(&str, Stage); 5] = [
        ("belief", |t| t.belief),
        ("prediction", |t| t.prediction),
        ("constraints", |t| t.constraints),
        ("solve", |t| t.solve),
        ("safety", |t| t.safety),
    ];
    let mut covered = 0.0;
    for (name, f) in stages {
        let p = Percentiles::of(&pick(f));
        covered += p.mean;
        println!(
            "  {name:<12} {:>8.1} {:>7.1}% {:>8.1} {:>8.1} {:>8.1}",
            p.mean,
            100.0 * p.mean / total.mean,
            p.p50,
            p.p99,
            p.max
        );
    }
    println!(
        "  {:<12} {:>8.1} {:>7.1}%",
        "(other)",
        total.mean - covered,
        100.0 * (total.mean - covered) / total.mean
    );
    println!(
        "  fallbacks {} (overruns {}, protective stops {}) of {} steps",
        after.fallbacks - before.fallbacks,
        after.overruns - before.overruns,
        after.protective_stops - before.protective_stops,
        steps,
    );
    println!(
        "  loop incl. plant: {:.0} decisions/s wall{}",
        steps as f64 / wall.as_secs_f64(),
        cpu.map_or(String::new(), |c| format!(
            ", {:.0} per CPU-second ({:.1} µs CPU per step)",
            steps as f64 / c,
            1e6 * c / steps as f64
        ))
    );

    // 2. Many engines side by side.
    #[cfg(feature = "rayon")]
    many(&scn, engines, steps);
    #[cfg(not(feature = "rayon"))]
    println!("\n(built without the rayon feature: no multi-engine throughput; {engines} engines skipped)");
}

#[cfg(feature = "rayon")]
fn many(scn: &Scenario, engines: usize, steps: usize) {
    use rayon::prelude::*;

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rounds = (steps / engines).max(50);
    println!(
        "\n{engines} engines side by side (one per person), {rounds} rounds of one step each:"
    );
    let mut one_thread_rate = 0.0;
    let counts = if threads > 1 {
        vec![1, threads]
    } else {
        vec![1]
    };
    for n in counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        let mut loops: Vec<Loop> = (0..engines)
            .map(|k| Loop::new(scn, 100 + k as u64, k as f64 / engines as f64))
            .collect();
        let fb0: u64 = loops.iter().map(|l| l.engine.counters().fallbacks).sum();
        pool.install(|| {
            for _ in 0..20 {
                loops.par_iter_mut().for_each(|l| {
                    l.step();
                });
            }
        });
        let cpu0 = cpu_s();
        let start = Instant::now();
        pool.install(|| {
            for _ in 0..rounds {
                loops.par_iter_mut().for_each(|l| {
                    l.step();
                });
            }
        });
        let el = start.elapsed().as_secs_f64();
        let cpu = cpu_s().zip(cpu0).map(|(a, b)| a - b);
        let fb: u64 = loops
            .iter()
            .map(|l| l.engine.counters().fallbacks)
            .sum::<u64>()
            - fb0;
        let rate = (rounds * engines) as f64 / el;
        if n == 1 {
            one_thread_rate = rate;
        }
        println!(
            "  {n:>2} thread(s): {rate:>9.0} decisions/s wall, {:>8.0} per thread{}{}  (fallbacks {fb})",
            rate / n as f64,
            cpu.map_or(String::new(), |c| format!(
                ", {:.0} per CPU-second",
                (rounds * engines) as f64 / c
            )),
            if n > 1 {
                format!(", speed-up {:.2}x", rate / one_thread_rate)
            } else {
                String::new()
            }
        );
    }
}
