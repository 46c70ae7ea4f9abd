//! Replays the ETH/UCY pedestrian tracks against the intent pipeline with a simulated robot
//! crossing each person's path, and prints goal accuracy, separation and latency per scene.
//!
//! ```text
//! cargo run --release --example intent_replay [--relaxed] [DATA_DIR] [MAX_TRACKS_PER_SCENE]
//! ```
//!
//! `DATA_DIR` defaults to `../shared/data/eth_ucy`. `--relaxed` sets every stage budget to 1 s
//! so that the decisions do not depend on how busy the machine is (a busy shared machine
//! pre-empts steps past their budget, and each overrun is a braking fallback).

use std::path::PathBuf;

use intent_engine::intent::replay::{mean_report, replay_scene, ReplaySettings, SceneReport};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let relaxed = all.iter().any(|a| a == "--relaxed");
    let mut args = all.into_iter().filter(|a| a != "--relaxed");
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/data/eth_ucy".into()),
    );
    let mut settings = ReplaySettings {
        max_tracks: args.next().map(|s| s.parse()).transpose()?,
        ..ReplaySettings::default()
    };
    if relaxed {
        settings = settings.with_relaxed_budgets();
    }
    if !dir.is_dir() {
        println!("no ETH/UCY data at {}; nothing to replay", dir.display());
        return Ok(());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let h = &settings.human;
    println!(
        "ETH/UCY replay: {} particles, {} goals per scene (k-means of endpoints), control {:.0} Hz, \
         observations every {} s, horizon {} x {} s, min separation {} m, robot double integrator \
         ({} m/s, {} m/s²) crossing each track",
        h.n_particles,
        settings.goals,
        1.0 / settings.timing.control_period,
        h.observation_period,
        settings.timing.horizon,
        settings.timing.plan_dt,
        settings.safety.min_separation,
        settings.robot_max_speed,
        settings.robot_max_accel,
    );
    println!(
        "stage budgets (µs): belief {}, prediction {}, solve {}, step {}",
        settings.timing.belief_budget.as_micros(),
        settings.timing.prediction_budget.as_micros(),
        settings.timing.solve_budget.as_micros(),
        settings.timing.step_budget.as_micros()
    );
    println!(
        "{:<11} {:>6} {:>7} {:>18} {:>22} {:>8} {:>17} {:>24}",
        "scene",
        "tracks",
        "steps",
        "goal acc 25/50/75",
        "violations (in-model)",
        "min sep",
        "latency p50/p99",
        "fallbacks"
    );
    let mut reports = Vec::new();
    for f in &files {
        let r = replay_scene(f, &settings)?;
        print_row(&r);
        reports.push(r);
    }
    if let Some(m) = mean_report(&reports) {
        print_row(&m);
        let v = m.violations;
        println!(
            "violating steps: {} in {} tracks; person faster than {} m/s: {}, robot approaching: {}, \
             robot at rest: {}; unexplained fallbacks: {}",
            v.total,
            v.tracks,
            settings.safety.human_speed,
            v.person_too_fast,
            v.robot_approaching,
            v.robot_at_rest,
            m.unexplained
        );
        for v in m
            .violation_steps
            .iter()
            .filter(|v| v.person_speed <= settings.safety.human_speed)
        {
            println!(
                "  within the model: track {} step {}: separation {:.2} m, person {:.2} m/s, robot approach {:+.2} m/s",
                v.track, v.step, v.separation, v.person_speed, v.robot_approach
            );
        }
    }
    Ok(())
}

fn print_row(r: &SceneReport) {
    let fb: Vec<String> = r
        .fallbacks
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "{:<11} {:>6} {:>7} {:>6.3} {:>5.3} {:>5.3} {:>14} ({:>4}) {:>7.2}m {:>7.1}/{:>6.1}µs {:>24}",
        r.scene,
        r.tracks,
        r.steps,
        r.accuracy_at[0],
        r.accuracy_at[1],
        r.accuracy_at[2],
        r.violations.total,
        r.violations.within_model(),
        r.min_separation,
        r.latency.p50,
        r.latency.p99,
        if fb.is_empty() {
            "none".into()
        } else {
            fb.join(", ")
        }
    );
}
