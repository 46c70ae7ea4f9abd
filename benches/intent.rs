//! Criterion benches of the intent pipeline at the default sizes (the embedded default
//! scenario: 1000 particles, 3 goals, horizon 20, chance keep-outs, 100 Hz): one
//! `IntentEngine::step` in a closed loop fed by the scenario's scripted person, and 64 engines
//! (one per person) stepped side by side with rayon.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::Scenario;
use intent_engine::intent::IntentEngine;

/// One engine in a closed loop with the scenario's person (observed every step it is due,
/// without noise) and a simulated robot shuttling between the scenario's stations; the script
/// restarts with the engine reset when it ends.
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
        let obs = (0..=steps)
            .map(|i| {
                let t = i as f64 * tc;
                let dropped = scn.human.dropouts.iter().any(|d| t >= d[0] && t < d[1]);
                (i % every == 0 && !dropped).then_some(path[i])
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
        for _ in 0..(phase * steps as f64) as usize {
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

    fn step(&mut self) -> bool {
        self.i += 1;
        if self.i >= self.obs.len() {
            self.restart();
            self.i = 1;
        }
        let tc = self.scn.config.timing.control_period;
        self.t += tc;
        let d = self.engine.step(self.obs[self.i], &self.x, self.t);
        let fresh = d.fresh;
        plant(&self.scn.config.robot, &mut self.x, &d.command, tc).unwrap();
        let w = self.scn.robot.waypoints[self.wp];
        let x = &self.x;
        if (x[0] - w[0]).hypot(x[1] - w[1]) < self.scn.robot.tolerance && x[2].hypot(x[3]) < 0.2 {
            self.wp = (self.wp + 1) % self.scn.robot.waypoints.len();
            self.engine
                .set_robot_goal(self.scn.robot.waypoints[self.wp])
                .unwrap();
        }
        fresh
    }
}

fn one_step(c: &mut Criterion) {
    let scn = Scenario::default_embedded().unwrap();
    let mut l = Loop::new(&scn, 7, 0.0);
    let mut g = c.benchmark_group("intent_step");
    g.throughput(Throughput::Elements(1));
    g.bench_function("default_closed_loop", |b| b.iter(|| l.step()));
    // The same loop with telemetry off: the difference is telemetry's cost per step
    // (examples/telemetry_overhead.rs measures it interleaved, which is less noisy).
    let mut off = Loop::new(&scn, 7, 0.0);
    off.engine.set_telemetry(false);
    g.bench_function("default_closed_loop_telemetry_off", |b| {
        b.iter(|| off.step())
    });
    g.finish();
}

#[cfg(feature = "rayon")]
fn many_engines(c: &mut Criterion) {
    use rayon::prelude::*;

    let scn = Scenario::default_embedded().unwrap();
    let n = 64;
    let mut loops: Vec<Loop> = (0..n)
        .map(|k| Loop::new(&scn, 100 + k as u64, k as f64 / n as f64))
        .collect();
    let mut g = c.benchmark_group("intent_many");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("64_engines_rayon", |b| {
        b.iter(|| {
            loops.par_iter_mut().for_each(|l| {
                l.step();
            });
        });
    });
    g.finish();
}

#[cfg(not(feature = "rayon"))]
fn many_engines(_: &mut Criterion) {}

criterion_group!(benches, one_step, many_engines);
criterion_main!(benches);
