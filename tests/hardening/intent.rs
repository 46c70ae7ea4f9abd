//! The pipeline: engine set-up and run-time calls, scenarios, the plant, replay settings.

use std::time::Duration;

use intent_engine::belief::eth_ucy::Track;
use intent_engine::belief::Goal;
use intent_engine::intent::replay::{replay_tracks, ReplaySettings};
use intent_engine::intent::robot::simulate as plant;
use intent_engine::intent::scenario::{simulate, Scenario};
use intent_engine::intent::{EngineConfig, IntentEngine, RobotModel, Workspace};
use intent_engine::Backend;

use super::harness::{Battery, BAD_SCALARS};

pub fn config() -> EngineConfig {
    let mut cfg = EngineConfig::new(
        vec![
            Goal::point(5.0, 3.2),
            Goal::point(5.2, 0.8),
            Goal::point(0.4, 3.6),
        ],
        Workspace {
            x_min: 0.0,
            x_max: 6.0,
            y_min: 0.0,
            y_max: 4.0,
        },
    );
    cfg.human.n_particles = 200;
    let t = &mut cfg.timing;
    // An unoptimised test build must not trip the budgets (the overrun path has its own test).
    t.belief_budget = Duration::from_secs(1);
    t.prediction_budget = Duration::from_secs(1);
    t.solve_budget = Duration::from_secs(1);
    t.step_budget = Duration::from_secs(4);
    cfg
}

/// What the engine answers, less timings.
fn engine_state(e: &IntentEngine) -> String {
    let d = e.decision();
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        e.robot_goal(),
        e.belief().goal_probabilities(),
        e.config(),
        d.command,
        d.goal_probabilities,
        d.robot_plan,
        d.fallback
    )
}

fn max_accel(cfg: &EngineConfig) -> f64 {
    match cfg.robot {
        RobotModel::DoubleIntegrator { max_accel, .. } => max_accel,
        _ => f64::INFINITY,
    }
}

#[test]
fn engine_rejects_bad_input_and_keeps_its_state() {
    let mut t = Battery::new();
    // Configuration.
    let mut bad = Vec::new();
    let mut c = config();
    c.scene.goals.clear();
    bad.push(("goals", c));
    let mut c = config();
    c.scene.workspace.x_max = -1.0;
    bad.push(("workspace", c));
    let mut c = config();
    c.scene.workspace.y_min = f64::NAN;
    bad.push(("workspace", c));
    let mut c = config();
    c.human.n_particles = 0;
    bad.push(("n_particles", c));
    let mut c = config();
    c.timing.control_period = 0.0;
    bad.push(("control_period", c));
    let mut c = config();
    c.timing.horizon = 0;
    bad.push(("horizon", c));
    let mut c = config();
    c.timing.plan_dt = f64::INFINITY;
    bad.push(("plan_dt", c));
    let mut c = config();
    c.safety.min_separation = -1.0;
    bad.push(("min_separation", c));
    let mut c = config();
    c.costs.input = f64::NAN;
    bad.push(("input|costs", c));
    let mut c = config();
    c.human.obs_noise = 0.0;
    bad.push(("obs_noise", c));
    let mut c = config();
    c.human.switch_prob = 2.0;
    bad.push(("switch_prob", c));
    let mut c = config();
    c.robot = RobotModel::DoubleIntegrator {
        max_accel: -1.0,
        max_speed: 1.0,
    };
    bad.push(("max_accel", c));
    let mut c = config();
    c.robot = RobotModel::DoubleIntegrator {
        max_accel: 1.0,
        max_speed: f64::NAN,
    };
    bad.push(("max_speed", c));
    let mut c = config();
    c.scene.goals.push(Goal::point(f64::NAN, 1.0));
    bad.push(("goal", c));
    for (name, c) in bad {
        t.err("EngineConfig::validate", name, || c.validate());
        t.err("IntentEngine::new", name, || {
            IntentEngine::new(c.clone()).map(|_| ())
        });
    }

    // Run-time calls that fail leave the engine as it was.
    let cfg = config();
    let mut e = IntentEngine::new(cfg.clone()).unwrap();
    let x = [1.0, 1.0, 0.0, 0.0];
    for k in 0..20 {
        e.step(Some([0.6 + 0.01 * k as f64, 0.5]), &x, 0.01 * k as f64);
    }
    let before = engine_state(&e);
    for &b in BAD_SCALARS.iter() {
        t.err("IntentEngine::set_robot_goal", "goal", || {
            e.set_robot_goal([b, 1.0])
        });
        t.err("IntentEngine::add_goal", "goal", || {
            e.add_goal(Goal::point(1.0, b))
        });
    }
    t.err("IntentEngine::set_robot_goal", "goal|workspace", || {
        e.set_robot_goal([100.0, 1.0])
    });
    t.err("IntentEngine::add_goal", "radius|goal", || {
        e.add_goal(Goal {
            x: 1.0,
            y: 1.0,
            radius: -1.0,
        })
    });
    t.err("IntentEngine::remove_goal", "index", || e.remove_goal(3));
    t.err("IntentEngine::remove_goal", "index", || {
        e.remove_goal(usize::MAX)
    });
    t.check(
        "IntentEngine (unchanged after failed calls)",
        engine_state(&e) == before,
        "state changed",
    );

    // step never fails: bad input gives the fallback with a reason, finite and within limits.
    let amax = max_accel(&cfg);
    let step = |t: &mut Battery,
                what: &str,
                e: &mut IntentEngine,
                h: Option<[f64; 2]>,
                x: &[f64],
                tt: f64| {
        if let Some(d) = t.no_panic(&format!("IntentEngine::step({what})"), || {
            e.step(h, x, tt).clone()
        }) {
            t.check(
                &format!("IntentEngine::step({what}) finite, within limits"),
                d.command
                    .iter()
                    .all(|u| u.is_finite() && u.abs() <= amax + 1e-9)
                    && d.goal_probabilities.iter().all(|p| p.is_finite()),
                (&d.command, &d.fallback),
            );
            Some(d)
        } else {
            None
        }
    };
    let mut tt = 0.2;
    for &b in BAD_SCALARS.iter() {
        tt += 0.01;
        if let Some(d) = step(
            &mut t,
            &format!("human {b}"),
            &mut e,
            Some([b, 1.0]),
            &x,
            tt,
        ) {
            t.check(
                &format!("IntentEngine::step(human {b}) reports it"),
                d.fallback.is_some() || !d.human.is_present() || d.fresh,
                d.fallback,
            );
        }
        tt += 0.01;
        if let Some(d) = step(
            &mut t,
            &format!("robot state {b}"),
            &mut e,
            Some([1.0, 1.0]),
            &[b, 1.0, 0.0, 0.0],
            tt,
        ) {
            t.check(
                &format!("IntentEngine::step(robot state {b}) is a fallback"),
                d.fallback.is_some() && !d.fresh,
                d.fallback,
            );
        }
        if let Some(d) = step(&mut t, &format!("t = {b}"), &mut e, Some([1.0, 1.0]), &x, b) {
            t.check(
                &format!("IntentEngine::step(t = {b}) is a fallback"),
                d.fallback.is_some(),
                d.fallback,
            );
        }
    }
    for (what, xs) in [
        ("short robot state", vec![1.0, 1.0]),
        ("long robot state", vec![1.0; 9]),
        ("empty robot state", vec![]),
    ] {
        tt += 0.01;
        if let Some(d) = step(&mut t, what, &mut e, Some([1.0, 1.0]), &xs, tt) {
            t.check(
                &format!("IntentEngine::step({what}) is a fallback"),
                d.fallback.is_some() && !d.fresh,
                d.fallback,
            );
        }
    }
    // Time going backwards, huge jumps, extremes.
    for (what, h, tt2) in [
        ("time backwards", Some([1.0, 1.0]), 0.0),
        ("time jump 1e9 s", Some([1.0, 1.0]), 1e9),
        ("human 1e300", Some([1e300, -1e300]), 1e9 + 0.01),
        ("human 1e6 jump", Some([1e6, 1e6]), 1e9 + 0.02),
        ("human 1e-300", Some([1e-300, 1e-300]), 1e9 + 0.03),
        ("no human", None, 1e9 + 0.04),
    ] {
        step(&mut t, what, &mut e, h, &x, tt2);
    }
    for v in [1e300, -1e300, 1e-300] {
        step(
            &mut t,
            &format!("robot state {v:e}"),
            &mut e,
            Some([1.0, 1.0]),
            &[v, v, v, v],
            1e9 + 1.0,
        );
    }
    // It still works normally afterwards.
    let mut e2 = IntentEngine::new(cfg.clone()).unwrap();
    e.reset();
    for k in 0..5 {
        let tk = 2e9 + 0.01 * k as f64;
        let a = e.step(Some([0.6, 0.5]), &x, tk).clone();
        let b = e2.step(Some([0.6, 0.5]), &x, tk).clone();
        // Same answer to rounding (the MPC's factorisation workspace is reused, not rebuilt).
        let close = |p: &[f64], q: &[f64]| {
            p.len() == q.len() && p.iter().zip(q).all(|(a, b)| (a - b).abs() <= 1e-9)
        };
        // A budget overrun (or the solver's time limit) on a loaded machine gives either one the (correct) fallback: compare
        // the plans only when both are fresh.
        let overrun = |d: &intent_engine::intent::Decision| {
            use intent_engine::intent::FallbackReason as F;
            use intent_engine::mpc::SolveStatus as S;
            matches!(
                d.fallback,
                Some(F::Overrun { .. } | F::SolverFailed(S::TimeLimit))
            )
        };
        if overrun(&a) || overrun(&b) {
            continue;
        }
        t.check(
            "IntentEngine::reset after hostile input matches a fresh engine",
            close(&a.command, &b.command) && close(&a.goal_probabilities, &b.goal_probabilities),
            (&a.command, &b.command, &a.fallback, &b.fallback),
        );
    }
    t.finish("engine");
}

#[test]
fn scenarios_plant_replay_backend_reject_bad_input() {
    let mut t = Battery::new();
    let text = intent_engine::DEFAULT_SCENARIO_JSON;
    t.no_panic("Scenario::default_embedded", || {
        Scenario::default_embedded().unwrap()
    });
    for cut in [0, 1, text.len() / 2, text.len() - 2] {
        t.err(
            &format!("Scenario::from_json(truncated at {cut})"),
            "json|scenario",
            || Scenario::from_json(&text[..cut]),
        );
    }
    for (from, to, name) in [
        ("\"speed\": 1.2", "\"speed\": -1.2", "speed"),
        ("\"rate_hz\": 100.0", "\"rate_hz\": 0.0", "rate_hz"),
        (
            "{\"goal\": \"shelf\", \"pause_s\"",
            "{\"goal\": \"kitchen\", \"pause_s\"",
            "kitchen",
        ),
        ("\"tolerance\": 0.15", "\"tolerance\": -0.15", "tolerance"),
        (
            "\"duration_s\": 12.0",
            "\"duration_s\": 1e300",
            "duration_s",
        ),
        (
            "\"model\": \"double_integrator\"",
            "\"model\": \"teleporter\"",
            "model|teleporter",
        ),
        (
            "\"state\": [4.0, 3.0, 0.0, 0.0]",
            "\"state\": [4.0, 3.0]",
            "state",
        ),
        (
            "\"dropouts\": [[7.2, 7.6]]",
            "\"dropouts\": [[7.6, 7.2]]",
            "dropouts",
        ),
        (
            "\"observation_noise\": 0.02",
            "\"observation_noise\": -0.02",
            "observation_noise",
        ),
        // Misspelt optional settings: unknown fields, not silently the default.
        ("\"curvature\": 0.35", "\"curvture\": 0.35", "curvture"),
        ("\"tolerance\": 0.15", "\"tolerence\": 0.15", "tolerence"),
        ("\"pause_s\": 1.0", "\"pause\": 1.0", "pause"),
        ("\"risk\": 0.05", "\"risks\": 0.05", "risks"),
        ("\"x_min\"", "\"xmin\"", "xmin"),
        ("\"provenance\"", "\"provenence\"", "provenence"),
    ] {
        if !text.contains(from) {
            t.fail(format!("scenario battery: default scenario lacks {from:?}"));
            continue;
        }
        let bad = text.replacen(from, to, 1);
        t.err(&format!("Scenario::from_json({to})"), name, || {
            Scenario::from_json(&bad)
        });
    }
    let scn = Scenario::default_embedded().unwrap();
    t.no_panic("Scenario::human_path(0)", || scn.human_path(0));
    let mut short = scn.clone();
    short.human.duration_s = 0.05;
    t.no_panic("simulate(short)", || {
        simulate(&short, |_, _| {}).map(|r| r.summary.steps)
    });

    // The plant.
    let m = RobotModel::default();
    let mut x = vec![0.0; 4];
    t.err("robot::simulate", "x", || {
        plant(&m, &mut [0.0; 2], &[0.0, 0.0], 0.1)
    });
    t.err("robot::simulate", "u", || plant(&m, &mut x, &[0.0], 0.1));
    for &b in BAD_SCALARS.iter().chain(&[0.0, -0.1]) {
        t.err("robot::simulate", "dt", || {
            plant(&m, &mut x, &[0.0, 0.0], b)
        });
    }
    for &b in BAD_SCALARS.iter() {
        t.err("robot::simulate", "u", || plant(&m, &mut x, &[b, 0.0], 0.1));
        t.err("robot::simulate", "x", || {
            plant(&m, &mut [b, 0.0, 0.0, 0.0], &[0.0, 0.0], 0.1)
        });
    }
    t.check(
        "robot::simulate leaves x unchanged on error",
        x == vec![0.0; 4],
        &x,
    );

    // Replay.
    let rs = ReplaySettings::default();
    for (name, s) in [
        (
            "goals",
            ReplaySettings {
                goals: 0,
                ..rs.clone()
            },
        ),
        (
            "margin",
            ReplaySettings {
                margin: f64::NAN,
                ..rs.clone()
            },
        ),
        (
            "robot_max_accel",
            ReplaySettings {
                robot_max_accel: -1.0,
                ..rs.clone()
            },
        ),
        (
            "robot_max_speed",
            ReplaySettings {
                robot_max_speed: f64::INFINITY,
                ..rs.clone()
            },
        ),
    ] {
        t.err("ReplaySettings::validate", name, || s.validate());
    }
    let tr = Track {
        id: 1,
        frames: vec![0, 10, 20],
        xy: vec![[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]],
    };
    t.err("replay_tracks", "frame_step", || {
        replay_tracks("s", std::slice::from_ref(&tr), 0, &rs)
    });
    t.err("replay_tracks", "frame_step", || {
        replay_tracks("s", std::slice::from_ref(&tr), -10, &rs)
    });
    let nan = Track {
        id: 2,
        frames: vec![0, 10],
        xy: vec![[f64::NAN, 0.0], [0.0, 0.0]],
    };
    t.err("replay_tracks", "track|xy|position", || {
        replay_tracks("s", &[nan], 10, &rs)
    });
    let ragged = Track {
        id: 3,
        frames: vec![0, 10, 20],
        xy: vec![[0.0, 0.0]],
    };
    t.err("replay_tracks", "track|xy|frames", || {
        replay_tracks("s", &[ragged], 10, &rs)
    });
    t.no_panic("replay_tracks(no tracks)", || {
        replay_tracks("s", &[], 10, &rs)
    });

    // Backend names.
    t.err("Backend::parse", "backend", || Backend::parse("tpu"));
    t.no_panic("Backend::cuda(99)", || Backend::cuda(99));
    t.finish("scenario / plant / replay");
}
