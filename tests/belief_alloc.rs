//! The hot paths of the belief core do not allocate after set-up.

mod common;

use intent_engine::belief::acquisition::{
    improvement_into, ucb_into, Improvement, ParticleUtilities,
};
use intent_engine::belief::resample::resample_into;
use intent_engine::belief::{
    FilterSettings, Goal, GoalInference, GoalModelSettings, LinearGaussian, ParticleFilter,
    Resampling,
};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

#[test]
fn filter_steps_resampling_and_acquisition_do_not_allocate() {
    let goals = [
        Goal::point(5.0, 0.0),
        Goal::point(0.0, 5.0),
        Goal::point(-3.0, -3.0),
    ];
    for scheme in [
        Resampling::Systematic,
        Resampling::Stratified,
        Resampling::Residual,
        Resampling::Multinomial,
        Resampling::Rejection,
    ] {
        let mut gi = GoalInference::new(
            &goals,
            GoalModelSettings::default(),
            FilterSettings {
                n_particles: 3000,
                resampling: scheme,
                ess_threshold: 1.0,
                ..Default::default()
            },
        )
        .unwrap();
        gi.update([0.0, 0.0]).unwrap();
        gi.update([0.1, 0.0]).unwrap();
        let (mut m, mut c) = (vec![0.0; 10], vec![0.0; 20]);
        gi.predict_into(5, 0, &mut m, &mut c).unwrap();
        let mut mean = vec![0.0; 7];
        let before = common::allocs();
        for t in 2..20 {
            gi.update([0.1 * t as f64, 0.0]).unwrap();
            gi.filter().mean_into(&mut mean).unwrap();
        }
        gi.predict_into(5, 1, &mut m, &mut c).unwrap();
        assert_eq!(common::allocs(), before, "{scheme:?}");
    }
    let mut pf = ParticleFilter::new(
        LinearGaussian::new(1, 1, &[0.9], &[0.1], &[1.0], &[0.5], &[0.0], &[1.0])
            .unwrap()
            .with_optimal_proposal(true),
        FilterSettings::default(),
    )
    .unwrap();
    pf.step(&[0.1][..]).unwrap();
    let w: Vec<f64> = (0..1000).map(|i| (i % 7) as f64 + 0.5).collect();
    let mut idx = vec![0; 1000];
    let mut scratch = vec![0.0; 1000];
    let u: Vec<f64> = (0..1000 * 8).map(|i| (i % 13) as f64).collect();
    let (mu, sd) = (vec![0.5; 64], vec![0.3; 64]);
    let mut out = vec![0.0; 64];
    let mut out2 = vec![0.0; 64];
    let before = common::allocs();
    for _ in 0..5 {
        pf.step(&[0.2][..]).unwrap();
    }
    resample_into(Resampling::Systematic, &w, 3, &mut scratch, &mut idx).unwrap();
    ucb_into(&mu, &sd, 2.0, &mut out).unwrap();
    improvement_into(Improvement::LogExpected, &mu, &sd, 0.6, 0.0, &mut out).unwrap();
    let pu = ParticleUtilities::new(&u, &w, 8).unwrap();
    pu.ucb_into(2.0, &mut out2[..8], &mut out[..8]).unwrap();
    pu.expected_improvement_into(3.0, 0.0, &mut out[..8])
        .unwrap();
    let _ = pu.thompson(1).unwrap();
    assert_eq!(common::allocs(), before);
}
