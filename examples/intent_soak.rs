//! Soak run: the default scenario's person walks between the goals for an hour of simulated
//! time (360,000 control steps at 100 Hz) while the robot shuttles between its stations. Prints,
//! per 10 simulated minutes, the resident memory (from /proc/self/statm), step latency
//! p50/p99/max and the separation violations, so a memory leak or a drifting tail shows.
//!
//! ```text
//! cargo run --release --example intent_soak [SIMULATED_SECONDS]
//! ```

use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::{Leg, Percentiles, Scenario};
use intent_engine::intent::IntentEngine;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3600.0);
    let mut scn = Scenario::default_embedded()?;
    // An endless walk: shelf, door, workbench, … with short pauses.
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
    let tc = scn.config.timing.control_period;
    let steps = (seconds / tc).round() as usize;
    let (path, _) = scn.human_path(steps);
    let mut engine = IntentEngine::new(scn.config.clone())?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let noise = Normal::new(0.0, scn.human.observation_noise)?;
    let mut x = [4.0, 3.0, 0.0, 0.0];
    let mut wp = 0;
    engine.set_robot_goal(scn.robot.waypoints[0])?;
    let window = (600.0 / tc) as usize;
    let mut lat = Vec::with_capacity(window);
    let mut reasons = std::collections::BTreeMap::<&'static str, usize>::new();
    let (mut violations, mut min_sep) = (0usize, f64::INFINITY);
    println!("simulated min | RSS MiB | step p50 µs | p99 µs | max µs | fallbacks | violations | min sep m");
    println!("start         | {:7.1} |", rss_mib());
    for i in 1..=steps {
        let t = i as f64 * tc;
        let h = path[i];
        let obs = [h[0] + noise.sample(&mut rng), h[1] + noise.sample(&mut rng)];
        let d = engine.step(Some(obs), &x, t);
        lat.push(d.timings.total);
        if let Some(f) = d.fallback {
            *reasons.entry(f.code()).or_default() += 1;
        }
        let cmd = [d.command[0], d.command[1]];
        plant(&scn.config.robot, &mut x, &cmd, tc)?;
        let sep = (x[0] - path[(i + 1).min(steps)][0]).hypot(x[1] - path[(i + 1).min(steps)][1]);
        min_sep = min_sep.min(sep);
        violations += usize::from(sep < scn.config.safety.min_separation);
        let w = scn.robot.waypoints[wp];
        if (x[0] - w[0]).hypot(x[1] - w[1]) < scn.robot.tolerance && x[2].hypot(x[3]) < 0.2 {
            wp = (wp + 1) % scn.robot.waypoints.len();
            engine.set_robot_goal(scn.robot.waypoints[wp])?;
        }
        if i % window == 0 || i == steps {
            let p = Percentiles::of(&lat);
            println!(
                "{:13.1} | {:7.1} | {:11.1} | {:6.1} | {:6.0} | {:9} | {:10} | {:.2}",
                t / 60.0,
                rss_mib(),
                p.p50,
                p.p99,
                p.max,
                engine.counters().fallbacks,
                violations,
                min_sep
            );
            lat.clear();
            if !reasons.is_empty() {
                println!("              fallbacks in this window: {reasons:?}");
                reasons.clear();
            }
        }
    }
    Ok(())
}
