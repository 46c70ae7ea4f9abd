//! What telemetry costs per `IntentEngine::step`: two identical engines on the default
//! scenario (same seed, same closed loop, so the same decisions), one with telemetry on and
//! one off, stepped in lock-step pairs with the order swapped every step (so drift and machine
//! noise hit both alike); halfway the roles cross over (so a speed difference between the two
//! engines themselves cancels), and a control pass with both off shows that difference. A
//! last pass adds a scraper polling each engine's `/metrics` every 10 ms.
//!
//! ```text
//! cargo run --release --example telemetry_overhead [STEPS]
//! ```
//!
//! Prints the median step time of each and the overhead as the median of the paired per-step
//! differences relative to the median step (pre-emption spikes hit single steps and drop out
//! of the median), with its range over 10 chunks of the run.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::Scenario;
use intent_engine::intent::{IntentEngine, Stage};

/// One engine in a closed loop with the scenario's person (noise-free observations at the
/// scenario's rate, its dropouts) and a robot shuttling between the stations.
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
    fn new(scn: &Scenario, telemetry: bool) -> Self {
        let mut cfg = scn.config.clone();
        cfg.telemetry = telemetry;
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
            engine: IntentEngine::new(cfg).expect("the embedded scenario is valid"),
            scn: scn.clone(),
            obs,
            x: [0.0; 4],
            i: 0,
            wp: 0,
            t: 0.0,
        };
        l.restart();
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
            .expect("stations lie in the workspace");
    }

    /// `n` closed-loop steps; returns the time spent inside `step`.
    fn run(&mut self, n: usize) -> Duration {
        let mut spent = Duration::ZERO;
        for _ in 0..n {
            self.i += 1;
            if self.i >= self.obs.len() {
                self.restart();
                self.i = 1;
            }
            let tc = self.scn.config.timing.control_period;
            self.t += tc;
            let t0 = Instant::now();
            let d = self.engine.step(self.obs[self.i], &self.x, self.t);
            spent += t0.elapsed();
            plant(&self.scn.config.robot, &mut self.x, &d.command, tc).expect("valid command");
            let w = self.scn.robot.waypoints[self.wp];
            let x = &self.x;
            if (x[0] - w[0]).hypot(x[1] - w[1]) < self.scn.robot.tolerance && x[2].hypot(x[3]) < 0.2
            {
                self.wp = (self.wp + 1) % self.scn.robot.waypoints.len();
                self.engine
                    .set_robot_goal(self.scn.robot.waypoints[self.wp])
                    .expect("stations lie in the workspace");
            }
        }
        spent
    }
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

/// `steps` lock-step pairs (the two engines do the same work at each step), the order swapped
/// every step. Returns per-step times (µs) on and off.
fn compare(on: &mut Loop, off: &mut Loop, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for i in 0..steps {
        let (x, y) = if i % 2 == 0 {
            let x = on.run(1);
            (x, off.run(1))
        } else {
            let y = off.run(1);
            (on.run(1), y)
        };
        a.push(x.as_secs_f64() * 1e6);
        b.push(y.as_secs_f64() * 1e6);
    }
    (a, b)
}

/// Medians, and the overhead as the median of the paired differences over the median step
/// (robust to pre-emption spikes, which hit single steps), with its spread over 10 chunks.
fn report(label: &str, (on, off): (Vec<f64>, Vec<f64>)) {
    let n = on.len();
    let diffs: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a - b).collect();
    let (mut on_s, mut off_s, mut d) = (on.clone(), off.clone(), diffs.clone());
    let m_on = pct(&mut on_s, 0.5);
    let m_off = pct(&mut off_s, 0.5);
    let m_d = pct(&mut d, 0.5);
    let mut chunks: Vec<f64> = diffs
        .chunks(n.div_ceil(10))
        .map(|c| pct(&mut c.to_vec(), 0.5) / m_off * 100.0)
        .collect();
    println!(
        "{label:<27} median step: on {m_on:7.2} µs, off {m_off:7.2} µs; paired difference \
         {:+.3} µs = {:+.2} % of the step (10 chunks: {:+.2} % … {:+.2} %), {n} pairs",
        m_d,
        m_d / m_off * 100.0,
        pct(&mut chunks, 0.0),
        pct(&mut chunks, 1.0),
    );
}

/// Crossover: `x` on and `y` off for the first half, then the other way round, so a speed
/// difference between the two engines themselves (memory placement) cancels. Returns the
/// per-step times with telemetry on and off, and the median paired difference of each half.
fn crossover(x: &mut Loop, y: &mut Loop, steps: usize) -> ((Vec<f64>, Vec<f64>), [f64; 2]) {
    x.engine.set_telemetry(true);
    y.engine.set_telemetry(false);
    let (mut on, mut off) = compare(x, y, steps / 2);
    let mut d1: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a - b).collect();
    x.engine.set_telemetry(false);
    y.engine.set_telemetry(true);
    let (on2, off2) = compare(y, x, steps / 2);
    let mut d2: Vec<f64> = on2.iter().zip(&off2).map(|(a, b)| a - b).collect();
    on.extend(on2);
    off.extend(off2);
    ((on, off), [pct(&mut d1, 0.5), pct(&mut d2, 0.5)])
}

fn scraper(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut scrapes = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let mut body = String::new();
                if s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").is_ok()
                    && s.read_to_string(&mut body).is_ok()
                {
                    scrapes += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        scrapes
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let scn = Scenario::default_embedded().expect("the embedded scenario parses");
    let mut x = Loop::new(&scn, false);
    let mut y = Loop::new(&scn, false);
    // Warm-up (caches, hot starts, the allocator), then the measured pairs.
    x.run(1000);
    y.run(1000);
    println!("default scenario, lock-step pairs of identical engines, order swapped every step");
    // Control: both off. Any difference is the engines' own (placement), not telemetry's.
    report(
        "control: both off (x - y)",
        compare(&mut x, &mut y, steps / 2),
    );
    let (r, halves) = crossover(&mut x, &mut y, steps);
    report("telemetry on vs off", r);
    println!(
        "  halves (x on, then y on): {:+.3} µs, {:+.3} µs; their mean {:+.3} µs",
        halves[0],
        halves[1],
        0.5 * (halves[0] + halves[1])
    );

    // The same with a scraper polling each engine's /metrics every 10 ms (the exporter
    // contends for the histogram lock; the engine never waits for it).
    let servers = [
        x.engine.serve_metrics(0).expect("a free loopback port"),
        y.engine.serve_metrics(0).expect("a free loopback port"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let scrapers: Vec<_> = servers
        .iter()
        .map(|s| scraper(s.port(), Arc::clone(&stop)))
        .collect();
    let (r, halves) = crossover(&mut x, &mut y, steps / 2);
    report("on + /metrics every 10 ms", r);
    println!(
        "  halves: {:+.3} µs, {:+.3} µs; their mean {:+.3} µs",
        halves[0],
        halves[1],
        0.5 * (halves[0] + halves[1])
    );
    stop.store(true, Ordering::Relaxed);
    let scrapes: u64 = scrapers.into_iter().map(|s| s.join().unwrap_or(0)).sum();
    for s in servers {
        s.stop();
    }
    let t = x.engine.telemetry();
    let total = t.stage(Stage::Total);
    println!(
        "scrapes served: {scrapes}; telemetry of engine x: {} steps recorded, total p50 {:.1} µs, \
         p99 {:.1} µs, max {:.1} µs, dropped samples {}",
        t.steps,
        total.p50.as_secs_f64() * 1e6,
        total.p99.as_secs_f64() * 1e6,
        total.max.as_secs_f64() * 1e6,
        t.dropped_samples
    );
}
