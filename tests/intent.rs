//! The intent pipeline: closed-loop safety on the default scenario, fallbacks with reasons on
//! bad input / failures / overruns, dropouts, run-time goals, determinism, and the allocation-
//! free step.

mod common;

use std::time::Duration;

use intent_engine::belief::Goal;
use intent_engine::belief::GoalVelocity;
use intent_engine::intent::scenario::{simulate, Scenario};
use intent_engine::intent::{
    CustomRobot, EngineConfig, FallbackReason, HumanForecast, HumanStatus, IntentEngine,
    KeepoutPolicy, RobotModel, Stage, Workspace,
};
use intent_engine::mpc::SolveStatus;
use ndarray::array;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

/// Budgets an unoptimised test build can meet (the overrun path has its own test).
fn generous(cfg: &mut EngineConfig) {
    let t = &mut cfg.timing;
    t.belief_budget = Duration::from_secs(1);
    t.prediction_budget = Duration::from_secs(1);
    t.solve_budget = Duration::from_secs(1);
    t.step_budget = Duration::from_secs(4);
}

fn workcell() -> EngineConfig {
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
    cfg.human.n_particles = 400;
    generous(&mut cfg);
    cfg
}

#[test]
fn default_scenario_is_safe_and_infers_the_goals() {
    let mut scn = Scenario::default_embedded().unwrap();
    generous(&mut scn.config);
    let run = simulate(&scn, |_, _| {}).unwrap();
    let s = &run.summary;
    assert_eq!(s.steps, 1200);
    // The person follows the model (goal-directed walks, a goal switch the model allows): the
    // robot never comes closer than the minimum separation.
    assert_eq!(s.separation_violations, 0, "{}", s.report(&scn));
    assert!(s.min_separation >= scn.config.safety.min_separation);
    assert!(s.goal_accuracy > 0.8, "{}", s.report(&scn));
    assert!(s.goal_accuracy_at[1] >= 0.99 && s.goal_accuracy_at[2] >= 0.99);
    assert!(s.waypoints_reached >= 1, "{}", s.report(&scn));
    // Every decision is finite and within the actuator limits; a fallback always has a reason.
    for r in &run.log {
        let d = &r.decision;
        assert!(d
            .command
            .iter()
            .all(|c| c.is_finite() && c.abs() <= 1.5 + 1e-12));
        assert_eq!(d.fresh, d.fallback.is_none());
        if d.human.is_present() {
            let sum: f64 = d.goal_probabilities.iter().sum();
            assert!((sum - 1.0).abs() < 1e-9);
            assert!(d.predicted_mean.iter().all(|v| v.is_finite()));
            assert!(d
                .predicted_cov
                .chunks(4)
                .all(|c| c[0] >= 0.0 && c[3] >= 0.0));
        }
    }
    // The dropout window shows up as prediction-only steps.
    assert!(run
        .log
        .iter()
        .any(|r| matches!(r.decision.human, HumanStatus::Predicted { .. })));
    let csv = run.csv();
    assert_eq!(csv.lines().count(), 1201);
    assert!(run.svg().starts_with("<svg") && run.svg().contains("goal posterior"));
}

#[test]
fn bad_input_gives_the_fallback_with_a_reason_and_changes_nothing() {
    let mut e = IntentEngine::new(workcell()).unwrap();
    e.set_robot_goal([1.0, 1.0]).unwrap();
    let x = [3.0, 2.0, 0.5, 0.0];
    for i in 1..=10 {
        let d = e.step(Some([0.5 + 0.012 * i as f64, 0.5]), &x, 0.01 * i as f64);
        assert!(d.fresh, "{:?}", d.fallback);
    }
    let probs = e.decision().goal_probabilities.clone();
    let steps = e.belief().filter().steps();
    // NaN observation: fallback, belief untouched; the brake opposes the velocity.
    let d = e.step(Some([f64::NAN, 0.5]), &x, 0.11);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidObservation));
    assert!(!d.fresh && d.command[0] < 0.0 && d.command[1] == 0.0);
    assert_eq!(e.belief().filter().steps(), steps);
    // Wrong robot state length, NaN state, time going backwards, infinite time.
    let d = e.step(None, &[1.0, 2.0], 0.12);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidRobotState));
    let d = e.step(None, &[1.0, f64::NAN, 0.0, 0.0], 0.13);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidRobotState));
    let d = e.step(None, &x, 0.05);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidTime));
    let d = e.step(None, &x, f64::INFINITY);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidTime));
    assert_eq!(e.belief().filter().steps(), steps);
    // The engine still works afterwards.
    let d = e.step(Some([0.65, 0.5]), &x, 0.12);
    assert!(d.fresh, "{:?}", d.fallback);
    assert_eq!(d.goal_probabilities.len(), probs.len());
    assert_eq!(e.counters().fallbacks, 5);
    // Set-up and setter errors are errors.
    assert!(e.set_robot_goal([10.0, 1.0]).is_err());
    assert!(e.set_robot_goal([f64::NAN, 1.0]).is_err());
    let mut bad = workcell();
    bad.scene.goals.clear();
    assert!(IntentEngine::new(bad).is_err());
    let mut bad = workcell();
    bad.safety.keepout = KeepoutPolicy::Chance { risk: 0.7 };
    assert!(IntentEngine::new(bad).is_err());
    let mut bad = workcell();
    bad.timing.control_period = 0.0;
    assert!(IntentEngine::new(bad).is_err());
}

#[test]
fn solver_failures_and_overruns_fall_back() {
    let mut cfg = workcell();
    cfg.timing.solve_budget = Duration::from_nanos(1);
    let mut e = IntentEngine::new(cfg).unwrap();
    e.set_robot_goal([1.0, 1.0]).unwrap();
    let d = e.step(Some([0.5, 0.5]), &[3.0, 2.0, 0.3, -0.4], 0.01);
    assert!(!d.fresh);
    match d.fallback {
        Some(FallbackReason::SolverFailed(SolveStatus::TimeLimit))
        | Some(FallbackReason::Overrun {
            stage: Stage::Solve,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // The brake: full deceleration against the velocity, within the limits.
    assert!(d.command[0] < 0.0 && d.command[1] > 0.0);
    assert!(d.command.iter().all(|c| c.abs() <= 1.5));
    let mut cfg = workcell();
    cfg.timing.belief_budget = Duration::from_nanos(1);
    let mut e = IntentEngine::new(cfg).unwrap();
    let d = e.step(Some([0.5, 0.5]), &[3.0, 2.0, 0.0, 0.0], 0.01);
    assert!(matches!(
        d.fallback,
        Some(FallbackReason::Overrun {
            stage: Stage::Belief,
            ..
        })
    ));
    assert!(d
        .to_owned()
        .fallback
        .unwrap()
        .to_string()
        .contains("belief"));
    assert_eq!(e.counters().overruns, 1);
}

#[test]
fn dropouts_are_predicted_then_the_person_is_lost_and_found_again() {
    let mut e = IntentEngine::new(workcell()).unwrap();
    e.set_robot_goal([1.0, 3.0]).unwrap();
    let x = [1.0, 3.0, 0.0, 0.0];
    let d = e.step(None, &x, 0.01);
    assert_eq!(d.human, HumanStatus::Unseen);
    assert!(d.predicted_mean.iter().all(|v| v.is_nan()));
    assert_eq!(d.separation, f64::INFINITY);
    let mut t = 0.01;
    for i in 0..30 {
        t += 0.01;
        e.step(Some([0.6 + 0.012 * i as f64, 0.5]), &x, t);
    }
    let before = e.decision().predicted_mean.clone();
    t += 0.01;
    let d = e.step(None, &x, t);
    assert!(matches!(d.human, HumanStatus::Predicted { .. }));
    assert!(d.fresh && d.predicted_mean.iter().all(|v| v.is_finite()));
    // Predicting on: the forecast keeps moving with the person.
    assert!(d.predicted_mean[0] > before[0]);
    for _ in 0..150 {
        t += 0.01;
        e.step(None, &x, t);
    }
    let d = e.step(None, &x, t + 0.01);
    assert_eq!(d.human, HumanStatus::Lost);
    assert!(d.fresh && d.predicted_mean.iter().all(|v| v.is_nan()));
    let reinit = e.counters().reinitialisations;
    let d = e.step(Some([4.0, 1.0]), &x, t + 0.02);
    assert_eq!(d.human, HumanStatus::Tracked);
    assert_eq!(e.counters().reinitialisations, reinit + 1);
}

#[test]
fn goals_can_be_added_and_removed_at_run_time() {
    let mut e = IntentEngine::new(workcell()).unwrap();
    let x = [3.0, 3.5, 0.0, 0.0];
    let mut t = 0.0;
    for i in 0..20 {
        t += 0.01;
        e.step(Some([2.0, 0.5 + 0.012 * i as f64]), &x, t);
    }
    e.add_goal(Goal::point(2.0, 3.9)).unwrap();
    for i in 20..150 {
        t += 0.01;
        let d = e.step(Some([2.0, 0.5 + 0.012 * i as f64]), &x, t);
        assert!(d.fresh, "{:?}", d.fallback);
        assert_eq!(d.goal_probabilities.len(), 4);
        assert_eq!(d.goal_means.len(), 4 * 20 * 2);
    }
    // Walking straight up toward the new goal: it becomes the most probable.
    let p = &e.decision().goal_probabilities;
    assert!(p[3] > 0.5 && p.iter().all(|&q| q <= p[3]), "{p:?}");
    e.remove_goal(0).unwrap();
    t += 0.01;
    assert_eq!(e.step(Some([2.0, 2.3]), &x, t).goal_probabilities.len(), 3);
    assert!(e.remove_goal(7).is_err());
}

#[test]
fn same_seed_same_decisions() {
    let run = || {
        let mut e = IntentEngine::new(workcell()).unwrap();
        e.set_robot_goal([1.0, 3.0]).unwrap();
        let mut out = Vec::new();
        let mut x = [4.0, 1.0, 0.0, 0.0];
        for i in 1..=60usize {
            let t = 0.01 * i as f64;
            let obs = (!i.is_multiple_of(3)).then_some([0.6 + 1.2 * t, 0.5 + 0.3 * t]);
            let d = e.step(obs, &x, t);
            out.extend_from_slice(&d.command);
            out.extend_from_slice(&d.goal_probabilities);
            out.extend_from_slice(&d.samples);
            let c = d.command.clone();
            intent_engine::intent::robot::simulate(&e.config().robot, &mut x, &c, 0.01).unwrap();
        }
        out
    };
    let (a, b) = (run(), run());
    assert_eq!(a.len(), b.len());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn separation_monitoring_slows_an_approach_but_allows_retreat() {
    let mut cfg = workcell();
    cfg.safety.keepout = KeepoutPolicy::None; // only the outer limit
    let mut e = IntentEngine::new(cfg).unwrap();
    // Robot at 1 m/s straight at a standing person 1.2 m ahead, its goal behind the person.
    e.set_robot_goal([5.5, 2.0]).unwrap();
    let x = [3.0, 2.0, 1.0, 0.0];
    let d = e.step(Some([4.2, 2.0]), &x, 0.01);
    assert!(d.fresh && d.speed_limited, "{d:?}");
    assert!(d.command[0] < 0.0, "must brake: {:?}", d.command);
    assert!(d.protective_distance > 0.6);
    // Moving away is allowed at full effort.
    e.set_robot_goal([0.5, 2.0]).unwrap();
    let d = e.step(Some([4.2, 2.0]), &[3.0, 2.0, -0.5, 0.0], 0.02);
    assert!(d.fresh && !d.speed_limited, "{d:?}");
}

#[test]
fn arm_and_custom_robots() {
    let mut cfg = workcell();
    cfg.robot = RobotModel::ArmPoint {
        base: [3.0, 2.0],
        reach: 0.8,
        max_speed: 0.5,
    };
    let mut e = IntentEngine::new(cfg).unwrap();
    e.set_robot_goal([4.5, 2.0]).unwrap(); // outside the reach: the plan stops at its edge
    let mut x = [3.0, 2.0];
    for i in 1..=200 {
        let t = 0.01 * i as f64;
        let d = e.step(Some([0.5, 0.5]), &x, t);
        assert!(d.fresh, "{:?}", d.fallback);
        let c = d.command.clone();
        intent_engine::intent::robot::simulate(&e.config().robot, &mut x, &c, 0.01).unwrap();
    }
    let r = (x[0] - 3.0).hypot(x[1] - 2.0);
    assert!(r <= 0.8 + 1e-6 && r > 0.7, "{x:?}");
    // A user-given single integrator with its own hold input.
    let mut cfg = workcell();
    cfg.robot = RobotModel::Custom(Box::new(CustomRobot {
        a_plan: array![[1.0, 0.0], [0.0, 1.0]],
        b_plan: array![[0.1, 0.0], [0.0, 0.1]],
        position: [0, 1],
        velocity: None,
        u_min: array![-0.5, -0.5],
        u_max: array![0.5, 0.5],
        hold: array![0.0, 0.0],
    }));
    let mut e = IntentEngine::new(cfg.clone()).unwrap();
    e.set_robot_goal([1.0, 1.0]).unwrap();
    let d = e.step(None, &[2.0, 2.0], 0.01);
    assert!(d.fresh && d.command[0] < 0.0);
    let d = e.step(None, &[2.0, 2.0, 0.0], 0.02);
    assert_eq!(d.fallback, Some(FallbackReason::InvalidRobotState));
    assert_eq!(d.command, vec![0.0, 0.0]);
    if let RobotModel::Custom(c) = &mut cfg.robot {
        c.hold = array![1.0, 0.0]; // outside the bounds
    }
    assert!(IntentEngine::new(cfg).is_err());
}

/// The goal prior and the forecast model are checked with the rest of the configuration.
#[test]
fn goal_prior_and_forecast_settings_are_validated() {
    let mut cfg = workcell();
    cfg.human.goal_prior = Some(vec![1.0, 2.0]);
    let e = cfg.validate().unwrap_err();
    assert!(e.to_string().contains("goal_prior"), "{e}");
    assert!(IntentEngine::new(cfg.clone()).is_err());
    cfg.human.goal_prior = Some(vec![1.0, f64::NAN, 1.0]);
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("goal_prior"));
    cfg.human.goal_prior = Some(vec![0.2, 0.6, 0.2]);
    cfg.validate().unwrap();
    cfg.human.forecast = Some(HumanForecast {
        rationality: -1.0,
        velocity_noise: 0.05,
        velocity: GoalVelocity::Heading { slow_radius: 1.0 },
    });
    let e = cfg.validate().unwrap_err();
    assert!(e.to_string().contains("forecast"), "{e}");
    // Configurations written before these settings existed still load (both default to None).
    let mut v = serde_json::to_value(workcell()).unwrap();
    let h = v["human"].as_object_mut().unwrap();
    h.remove("goal_prior");
    h.remove("forecast");
    let back: EngineConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back, workcell());
    // Nobody seen yet: the decision reports the prior.
    cfg.human.forecast = None;
    let mut e = IntentEngine::new(cfg).unwrap();
    let d = e.step(None, &[4.0, 1.0, 0.0, 0.0], 0.01);
    assert_eq!(d.goal_probabilities, vec![0.2, 0.6, 0.2]);
}

#[test]
fn a_step_does_not_allocate() {
    for (policy, extras) in [
        (KeepoutPolicy::Chance { risk: 0.05 }, false),
        (KeepoutPolicy::Scenario { samples: 16 }, false),
        // With a goal prior and a separate forecast model.
        (KeepoutPolicy::Chance { risk: 0.05 }, true),
    ] {
        let mut cfg = workcell();
        cfg.safety.keepout = policy;
        if extras {
            cfg.human.goal_prior = Some(vec![1.0, 2.0, 1.0]);
            cfg.human.forecast = Some(HumanForecast {
                rationality: 0.1,
                velocity_noise: 0.05,
                velocity: GoalVelocity::Heading { slow_radius: 1.0 },
            });
        }
        let mut e = IntentEngine::new(cfg).unwrap();
        e.set_robot_goal([1.0, 3.0]).unwrap();
        let mut x = [4.0, 1.0, 0.0, 0.0];
        let mut t = 0.0;
        let go = |e: &mut IntentEngine, i: usize, x: &mut [f64; 4], t: &mut f64| {
            *t += 0.01;
            let obs = (!i.is_multiple_of(4)).then_some([0.6 + 0.012 * i as f64, 0.5]);
            let cmd = {
                let d = e.step(obs, x, *t);
                [d.command[0], d.command[1]]
            };
            for k in 0..2 {
                x[k] += 0.01 * x[k + 2];
                x[k + 2] += 0.01 * cmd[k];
            }
        };
        for i in 0..20 {
            go(&mut e, i, &mut x, &mut t);
        }
        let before = common::allocs();
        for i in 20..80 {
            go(&mut e, i, &mut x, &mut t);
        }
        assert_eq!(common::allocs(), before, "{policy:?}");
    }
}

#[test]
fn online_gp_residual_learns_what_the_goal_model_misses() {
    // A person circling the room (goals explain little of it): the GP correction, learned
    // from their own track, cuts the 1 s-ahead prediction error.
    let err = |gp: bool| {
        let mut cfg = EngineConfig::new(
            vec![Goal::point(9.0, 5.0), Goal::point(9.0, 1.0)],
            Workspace {
                x_min: 0.0,
                x_max: 10.0,
                y_min: 0.0,
                y_max: 6.0,
            },
        );
        cfg.human.n_particles = 300;
        generous(&mut cfg);
        if gp {
            cfg.human.gp_residual = Some(intent_engine::intent::GpResidualConfig::default());
        }
        let mut e = IntentEngine::new(cfg).unwrap();
        e.set_robot_goal([1.0, 5.5]).unwrap();
        let path = |t: f64| [5.0 + 2.0 * (0.4 * t).cos(), 3.0 + 2.0 * (0.4 * t).sin()];
        let (mut sum, mut n) = (0.0, 0);
        for i in 1..3000 {
            let t = 0.01 * i as f64;
            let d = e.step(Some(path(t)), &[1.0, 5.5, 0.0, 0.0], t);
            if i > 1500 && i % 10 == 0 {
                let truth = path(t + 1.0);
                sum += (d.predicted_mean[18] - truth[0]).hypot(d.predicted_mean[19] - truth[1]);
                n += 1;
            }
        }
        sum / n as f64
    };
    let (plain, corrected) = (err(false), err(true));
    assert!(corrected < 0.85 * plain, "{corrected} vs {plain}");
}

#[test]
fn unicycle_turns_around_and_reaches_its_goal() {
    let mut cfg = workcell();
    cfg.robot = RobotModel::Unicycle {
        max_speed: 0.8,
        max_turn_rate: 2.0,
        lookahead: 0.2,
    };
    let mut e = IntentEngine::new(cfg).unwrap();
    e.set_robot_goal([1.0, 1.0]).unwrap();
    // Facing away from the goal (+x), person far away in the opposite corner.
    let mut x = [4.0, 3.0, 0.0];
    for i in 1..=800 {
        let t = 0.01 * i as f64;
        let d = e.step(Some([5.5, 0.3]), &x, t);
        assert!(d.fresh, "{:?}", d.fallback);
        assert!(d.command[0].abs() <= 0.8 + 1e-12 && d.command[1].abs() <= 2.0 + 1e-12);
        let c = d.command.clone();
        intent_engine::intent::robot::simulate(&e.config().robot, &mut x, &c, 0.01).unwrap();
    }
    // The look-ahead point sits on the goal.
    let p = [x[0] + 0.2 * x[2].cos(), x[1] + 0.2 * x[2].sin()];
    assert!((p[0] - 1.0).hypot(p[1] - 1.0) < 0.05, "{x:?}");
    assert_eq!(
        e.step(None, &[1.0, 1.0, 0.0, 0.0], 9.0).fallback,
        Some(FallbackReason::InvalidRobotState)
    );
}

#[test]
fn keepouts_that_cannot_be_met_still_give_a_plan_with_the_soft_penalty() {
    // The cold solve with every keep-out violated takes ~900 active-set steps: in a debug
    // build on a busy 2-core machine that can pass even workcell()'s 1 s budget.
    let slow_ok = |mut cfg: EngineConfig| {
        cfg.timing.solve_budget = Duration::from_secs(60);
        cfg.timing.step_budget = Duration::from_secs(120);
        cfg
    };
    let mut e = IntentEngine::new(slow_ok(workcell())).unwrap();
    e.set_robot_goal([5.5, 2.0]).unwrap();
    // The person stands 0.3 m from the robot: no plan keeps 0.5 m at the first stage. The
    // exact-penalty keep-outs still give a fresh plan, and it moves away from the person.
    for i in 1..=5 {
        let d = e.step(Some([3.3, 2.0]), &[3.0, 2.0, 0.0, 0.0], 0.01 * i as f64);
        assert!(d.fresh, "{:?}", d.fallback);
        assert!(d.command[0] < 0.0, "{:?}", d.command);
    }
    // With hard keep-outs the same situation is the solver-failed fallback.
    let mut cfg = slow_ok(workcell());
    cfg.safety.soft_penalty = None;
    let mut e = IntentEngine::new(cfg).unwrap();
    let d = e.step(Some([3.3, 2.0]), &[3.0, 2.0, 0.0, 0.0], 0.01);
    assert_eq!(
        d.fallback,
        Some(FallbackReason::SolverFailed(SolveStatus::PrimalInfeasible))
    );
}
