//! The ETH/UCY loader and goal inference on real tracks (skipped when
//! `../shared/data/eth_ucy` is not beside the checkout).

use std::path::PathBuf;

use intent_engine::belief::eth_ucy::load;
use intent_engine::belief::{FilterSettings, Goal, GoalInference, GoalModelSettings};

fn data_dir() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eth_ucy");
    p.is_dir().then_some(p)
}

#[test]
fn loads_every_scene_and_tracks_real_pedestrians() {
    let Some(dir) = data_dir() else {
        eprintln!("ETH/UCY data not present; skipping");
        return;
    };
    for scene in [
        "eth_univ",
        "eth_hotel",
        "ucy_univ",
        "ucy_zara01",
        "ucy_zara02",
    ] {
        let (tracks, step) = load(&dir.join(format!("{scene}.csv"))).unwrap();
        assert!(tracks.len() > 100 && step >= 1, "{scene}");
        let seg = tracks
            .iter()
            .flat_map(|t| t.contiguous_segments(step))
            .find(|s| s.xy.len() >= 12)
            .unwrap();
        let end = *seg.xy.last().unwrap();
        let goals = [
            Goal::point(end[0], end[1]),
            Goal::point(end[0] + 20.0, end[1]),
            Goal::point(end[0], end[1] - 20.0),
        ];
        let mut gi = GoalInference::new(
            &goals,
            GoalModelSettings {
                dt: 0.4,
                obs_noise: 0.1,
                ..Default::default()
            },
            FilterSettings {
                n_particles: 500,
                ..Default::default()
            },
        )
        .unwrap();
        for z in &seg.xy {
            gi.update(*z).unwrap();
        }
        let p = gi.goal_probabilities();
        assert!(p.iter().all(|q| q.is_finite()) && (p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert!(load(&dir.join("missing.csv")).is_err());
}
