//! The intent pipeline against real pedestrian tracks (one ETH/UCY scene, a subset of its
//! tracks; skipped when `../shared/data/eth_ucy` is not beside the checkout).

use std::path::PathBuf;

use intent_engine::intent::replay::{replay_scene, ReplaySettings};
use intent_engine::intent::HumanModel;

fn scene() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eth_ucy/eth_hotel.csv");
    p.is_file().then_some(p)
}

fn small(max_tracks: usize) -> ReplaySettings {
    let d = ReplaySettings::default();
    ReplaySettings {
        max_tracks: Some(max_tracks),
        human: HumanModel {
            n_particles: 200,
            ..d.human.clone()
        },
        ..d
    }
}

#[test]
fn replay_is_accurate_and_keeps_its_distance() {
    let Some(path) = scene() else {
        eprintln!("ETH/UCY data not present (../shared/data/eth_ucy); skipping");
        return;
    };
    // Budgets relaxed: the decisions must not depend on the speed of an unoptimised build.
    let r = replay_scene(&path, &small(20).with_relaxed_budgets()).unwrap();
    assert_eq!(r.tracks, 20);
    assert_eq!(r.unexplained, 0, "a non-fresh decision without a reason");
    // Chance is 1/3 with three goals.
    assert!(
        r.accuracy_at[2] >= 0.6,
        "accuracy at 75 %: {:?}",
        r.accuracy_at
    );
    assert!(
        r.accuracy_at[2] >= r.accuracy_at[0] - 0.05,
        "{:?}",
        r.accuracy_at
    );
    // No separation violation while the person walks within the speed the separation
    // monitor assumes (violations by people faster than that are counted, not failed).
    let v = r.violations;
    assert_eq!(v.within_model(), 0, "{v:?}: {:?}", r.violation_steps);
    assert!(r.min_separation.is_finite() && r.min_separation > 0.0);
}

#[test]
fn overruns_fall_back_with_a_reason() {
    let Some(path) = scene() else {
        eprintln!("ETH/UCY data not present (../shared/data/eth_ucy); skipping");
        return;
    };
    // Real budgets: in an unoptimised build stages overrun; every such step must carry the
    // fallback and its reason, and nothing may panic.
    let r = replay_scene(&path, &small(3)).unwrap();
    assert_eq!(r.unexplained, 0);
    let known = ["overrun", "solver-failed", "protective-stop"];
    assert!(
        r.fallbacks.keys().all(|k| known.contains(&k.as_str())),
        "{:?}",
        r.fallbacks
    );
    assert!(r.steps > 0 && r.latency.max > 0.0);
}
