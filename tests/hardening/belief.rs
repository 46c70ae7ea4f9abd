//! Particle filters, goal inference, resampling, acquisition, the ETH/UCY loader.

use intent_engine::belief::acquisition::{
    improvement_into, select_action, thompson_gaussian, ucb_into, Improvement, ParticleUtilities,
};
use intent_engine::belief::eth_ucy::{load, parse};
use intent_engine::belief::resample::{check_weights, resample_into};
use intent_engine::belief::GpMotion;
use intent_engine::belief::{
    resample, FilterSettings, Goal, GoalInference, GoalModel, GoalModelSettings, LinearGaussian,
    ParticleFilter, Resampling,
};
use intent_engine::gp::{GaussianProcess, GpSettings, Kernel};
use ndarray::Array2;

use super::harness::{fingerprint, Battery, BAD_SCALARS, EXTREME};

const SCHEMES: [Resampling; 5] = [
    Resampling::Systematic,
    Resampling::Stratified,
    Resampling::Residual,
    Resampling::Multinomial,
    Resampling::Rejection,
];

fn goals() -> Vec<Goal> {
    vec![
        Goal::point(5.0, 0.0),
        Goal::point(0.0, 5.0),
        Goal::point(-5.0, 0.0),
    ]
}

fn inference() -> GoalInference {
    GoalInference::new(
        &goals(),
        GoalModelSettings {
            dt: 0.1,
            ..GoalModelSettings::default()
        },
        FilterSettings {
            n_particles: 300,
            seed: 3,
            ..FilterSettings::default()
        },
    )
    .unwrap()
}

#[test]
fn goal_inference_rejects_bad_input_and_keeps_its_belief() {
    let mut t = Battery::new();
    let ms = GoalModelSettings {
        dt: 0.1,
        ..GoalModelSettings::default()
    };
    let fs = FilterSettings {
        n_particles: 300,
        ..FilterSettings::default()
    };
    t.err("GoalInference::new", "goals", || {
        GoalInference::new(&[], ms.clone(), fs.clone())
    });
    for &b in BAD_SCALARS.iter() {
        t.err("GoalInference::new", "goal", || {
            GoalInference::new(&[Goal::point(b, 0.0)], ms.clone(), fs.clone())
        });
        t.err("GoalInference::new", "radius|goal", || {
            GoalInference::new(
                &[Goal {
                    x: 0.0,
                    y: 0.0,
                    radius: b,
                }],
                ms.clone(),
                fs.clone(),
            )
        });
    }
    for (name, m) in [
        (
            "dt",
            GoalModelSettings {
                dt: 0.0,
                ..ms.clone()
            },
        ),
        (
            "dt",
            GoalModelSettings {
                dt: f64::NAN,
                ..ms.clone()
            },
        ),
        (
            "speed",
            GoalModelSettings {
                speed: -1.0,
                ..ms.clone()
            },
        ),
        (
            "rationality",
            GoalModelSettings {
                rationality: f64::NAN,
                ..ms.clone()
            },
        ),
        (
            "velocity_noise",
            GoalModelSettings {
                velocity_noise: -1.0,
                ..ms.clone()
            },
        ),
        (
            "obs_noise",
            GoalModelSettings {
                obs_noise: 0.0,
                ..ms.clone()
            },
        ),
        (
            "obs_noise",
            GoalModelSettings {
                obs_noise: f64::INFINITY,
                ..ms.clone()
            },
        ),
        (
            "switch_prob",
            GoalModelSettings {
                switch_prob: 1.5,
                ..ms.clone()
            },
        ),
        (
            "switch_prob",
            GoalModelSettings {
                switch_prob: -0.1,
                ..ms.clone()
            },
        ),
        (
            "init_mean",
            GoalModelSettings {
                init_mean: [f64::NAN, 0.0, 0.0, 0.0],
                ..ms.clone()
            },
        ),
        (
            "init_std",
            GoalModelSettings {
                init_std: [-1.0, 1.0, 1.0, 1.0],
                ..ms.clone()
            },
        ),
    ] {
        t.err("GoalModelSettings::validate", name, || m.validate());
        t.err("GoalInference::new", name, || {
            GoalInference::new(&goals(), m.clone(), fs.clone())
        });
    }
    for (name, f) in [
        (
            "n_particles",
            FilterSettings {
                n_particles: 0,
                ..fs.clone()
            },
        ),
        (
            "ess_threshold",
            FilterSettings {
                ess_threshold: f64::NAN,
                ..fs.clone()
            },
        ),
        (
            "ess_threshold",
            FilterSettings {
                ess_threshold: 1.5,
                ..fs.clone()
            },
        ),
        (
            "ess_threshold",
            FilterSettings {
                ess_threshold: -0.5,
                ..fs.clone()
            },
        ),
    ] {
        t.err("FilterSettings::validate", name, || f.validate());
        t.err("GoalInference::new", name, || {
            GoalInference::new(&goals(), ms.clone(), f.clone())
        });
    }
    t.err("GoalModel::new", "goals", || {
        GoalModel::new(&[], ms.clone())
    });
    let gm = GoalModel::new(&goals(), ms.clone()).unwrap();
    t.err("GoalModel::with_prior", "prior", || {
        gm.clone().with_prior(&[1.0, 0.0])
    });
    t.err("GoalModel::with_prior", "prior", || {
        gm.clone().with_prior(&[1.0, f64::NAN, 0.0])
    });
    t.err("GoalModel::with_prior", "prior", || {
        gm.clone().with_prior(&[1.0, -1.0, 1.0])
    });
    t.err("GoalModel::with_prior", "prior", || {
        gm.clone().with_prior(&[0.0, 0.0, 0.0])
    });
    t.err("ParticleFilter::new", "n_particles", || {
        ParticleFilter::new(
            gm.clone(),
            FilterSettings {
                n_particles: 0,
                ..fs.clone()
            },
        )
    });

    // A running belief: failed updates leave it exactly as it was.
    let mut gi = inference();
    for k in 0..10 {
        gi.update([0.1 * k as f64, 0.0]).unwrap();
    }
    let fp = fingerprint(&gi);
    let probs = gi.goal_probabilities();
    for &b in BAD_SCALARS.iter() {
        t.err("GoalInference::update", "z|observation|position", || {
            gi.update([b, 0.0])
        });
        t.err("GoalInference::update", "z|observation|position", || {
            gi.update([0.0, b])
        });
    }
    t.err("GoalInference::add_goal", "goal", || {
        gi.add_goal(Goal::point(f64::NAN, 0.0))
    });
    t.err("GoalInference::remove_goal", "index", || gi.remove_goal(3));
    t.err("GoalInference::remove_goal", "index", || {
        gi.remove_goal(usize::MAX)
    });
    let mut short = [0.0; 2];
    t.err("GoalInference::goal_probabilities_into", "out", || {
        gi.goal_probabilities_into(&mut short)
    });
    t.err("GoalInference::sample_trajectories", "horizon", || {
        gi.sample_trajectories(0, 4, 1)
    });
    t.check(
        "GoalInference (unchanged after failures)",
        fingerprint(&gi) == fp && gi.goal_probabilities() == probs,
        "belief changed",
    );
    let (mut m, mut c) = (vec![0.0; 10], vec![0.0; 20]);
    t.err("GoalInference::predict_into", "means", || {
        gi.predict_into(5, 1, &mut m[..9], &mut c)
    });
    t.err("GoalInference::predict_into", "covs", || {
        gi.predict_into(5, 1, &mut m, &mut c[..19])
    });
    // Observations far outside the model (1e300 away, a jump of 1e6 m): every particle's
    // weight underflows. The belief must stay a distribution (finite, sums to 1), not NaN.
    for z in [
        [1e6, -1e6],
        [1e300, 1e300],
        [-1e300, 0.0],
        [1e-300, 1e-300],
        [0.5, 0.0],
    ] {
        let r = t.no_panic(&format!("GoalInference::update({z:?})"), || gi.update(z));
        if let Some(r) = r {
            let p = gi.goal_probabilities();
            let s: f64 = p.iter().sum();
            t.check(
                &format!("GoalInference::update({z:?}) keeps a distribution"),
                p.iter().all(|v| v.is_finite() && *v >= 0.0)
                    && (s - 1.0).abs() < 1e-9
                    && gi.filter().weights().iter().all(|w| w.is_finite()),
                (&r, &p),
            );
        }
    }
    // Goals far away (1e300) are valid positions; probabilities stay finite.
    let mut far = GoalInference::new(
        &[Goal::point(1e300, 0.0), Goal::point(-1e300, 1e300)],
        ms.clone(),
        fs.clone(),
    )
    .ok();
    if let Some(far) = far.as_mut() {
        for k in 0..5 {
            if let Some(r) = t.no_panic("GoalInference::update(goals at 1e300)", || {
                far.update([0.1 * k as f64, 0.0])
            }) {
                let p = far.goal_probabilities();
                t.check(
                    "GoalInference(goals at 1e300) finite",
                    r.is_err() || p.iter().all(|v| v.is_finite()),
                    (&r, &p),
                );
            }
        }
    }
    t.finish("goal inference");
}

#[test]
fn filters_models_resampling_and_acquisition_reject_bad_input() {
    let mut t = Battery::new();
    // LinearGaussian: lengths, non-finite, non-PSD covariances.
    let ok = |a: &[f64], q: &[f64], h: &[f64], r: &[f64], m0: &[f64], p0: &[f64]| {
        LinearGaussian::new(1, 1, a, q, h, r, m0, p0)
    };
    t.err("LinearGaussian::new", "a", || {
        ok(&[1.0, 0.0], &[0.1], &[1.0], &[0.2], &[0.0], &[1.0])
    });
    t.err("LinearGaussian::new", "q", || {
        ok(&[1.0], &[-0.1], &[1.0], &[0.2], &[0.0], &[1.0])
    });
    t.err("LinearGaussian::new", "r", || {
        ok(&[1.0], &[0.1], &[1.0], &[-0.2], &[0.0], &[1.0])
    });
    t.err("LinearGaussian::new", "m0", || {
        ok(&[1.0], &[0.1], &[1.0], &[0.2], &[f64::NAN], &[1.0])
    });
    t.err("LinearGaussian::new", "p0", || {
        ok(&[1.0], &[0.1], &[1.0], &[0.2], &[0.0], &[f64::INFINITY])
    });
    t.err("LinearGaussian::new", "nx|ny", || {
        LinearGaussian::new(0, 1, &[], &[], &[], &[0.2], &[], &[])
    });
    let lg = LinearGaussian::new(1, 1, &[1.0], &[0.1], &[1.0], &[0.2], &[0.0], &[1.0]).unwrap();
    let mut pf = ParticleFilter::new(
        lg,
        FilterSettings {
            n_particles: 200,
            ..FilterSettings::default()
        },
    )
    .unwrap();
    pf.step(&[0.3]).unwrap();
    let fp = fingerprint(&pf);
    for &b in BAD_SCALARS.iter() {
        t.err("ParticleFilter::step", "obs|y|observation", || {
            pf.step(&[b])
        });
    }
    t.err("ParticleFilter::step", "obs|y|observation", || pf.step(&[]));
    t.err("ParticleFilter::step", "obs|y|observation", || {
        pf.step(&[0.0, 1.0])
    });
    t.err("ParticleFilter::component_into", "c|component", || {
        pf.component_into(5, &mut [0.0; 200])
    });
    t.err("ParticleFilter::component_into", "out", || {
        pf.component_into(0, &mut [0.0; 3])
    });
    t.err("ParticleFilter::mean_into", "out", || {
        pf.mean_into(&mut [0.0; 3])
    });
    t.err("ParticleFilter::covariance_into", "mean|out", || {
        pf.covariance_into(&[0.0, 0.0], &mut [0.0])
    });
    t.err("ParticleFilter::covariance_into", "mean", || {
        pf.covariance_into(&[f64::NAN], &mut [0.0])
    });
    t.err("ParticleFilter::sample_trajectories_into", "out", || {
        pf.sample_trajectories_into(3, &[0], 1, &mut [0.0; 2])
    });
    t.err(
        "ParticleFilter::sample_trajectories_into",
        "components",
        || pf.sample_trajectories_into(3, &[7], 1, &mut [0.0; 3 * 200]),
    );
    t.check(
        "ParticleFilter (unchanged after failures)",
        fingerprint(&pf) == fp,
        "state changed",
    );
    // Far outside the model: all weights underflow; the filter reports it and stays finite.
    for y in [1e6, 1e300, -1e300] {
        if let Some(r) = t.no_panic(&format!("ParticleFilter::step({y:e})"), || pf.step(&[y])) {
            let w = pf.weights();
            t.check(
                &format!("ParticleFilter::step({y:e}) finite weights"),
                w.iter().all(|v| v.is_finite() && *v >= 0.0)
                    && pf.mean().iter().all(|v| v.is_finite()),
                (&r, pf.ess()),
            );
        }
    }
    // GP motion model.
    let mut gp = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[1.0, 1.0]).unwrap(),
        GpSettings::default(),
    )
    .unwrap();
    gp.fit(
        Array2::from_shape_fn((5, 2), |(i, j)| (i + j) as f64).view(),
        Array2::zeros((5, 2)).view(),
    )
    .unwrap();
    for (name, dt, ev, on, std) in [
        ("dt", 0.0, 0.1, 0.1, 0.1),
        ("dt", f64::NAN, 0.1, 0.1, 0.1),
        ("extra_velocity_var", 0.1, -1.0, 0.1, 0.1),
        ("obs_noise", 0.1, 0.1, 0.0, 0.1),
        ("init_std", 0.1, 0.1, 0.1, -1.0),
    ] {
        let g = GaussianProcess::from_json(&gp.to_json().unwrap()).unwrap();
        t.err("GpMotion::new", name, || {
            GpMotion::new(g, dt, ev, on, [0.0, 0.0], std)
        });
    }
    let g = GaussianProcess::from_json(&gp.to_json().unwrap()).unwrap();
    t.err("GpMotion::new", "init", || {
        GpMotion::new(g, 0.1, 0.1, 0.1, [f64::NAN, 0.0], 0.1)
    });
    let mut g1 = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[1.0]).unwrap(),
        GpSettings::default(),
    )
    .unwrap();
    g1.fit(Array2::zeros((2, 1)).view(), Array2::zeros((2, 1)).view())
        .unwrap();
    t.err("GpMotion::new", "gp", || {
        GpMotion::new(g1, 0.1, 0.1, 0.1, [0.0, 0.0], 0.1)
    });

    // Resampling.
    t.err("Resampling::parse", "resampling|scheme", || {
        Resampling::parse("bogus")
    });
    for bad in [
        vec![],
        vec![0.0, 0.0],
        vec![1.0, f64::NAN],
        vec![1.0, -1.0],
        vec![f64::INFINITY, 1.0],
    ] {
        t.err("check_weights", "weights", || check_weights(&bad));
        for s in SCHEMES {
            t.err(&format!("resample[{}]", s.name()), "weights", || {
                resample(s, &bad, None, 0)
            });
        }
    }
    for s in SCHEMES {
        let mut out = vec![0usize; 4];
        let mut scratch = vec![0.0; 1];
        t.err(
            &format!("resample_into[{}]", s.name()),
            "scratch|out",
            || resample_into(s, &[1.0; 4], 0, &mut scratch, &mut out),
        );
        // Weights that all underflow relative to each other (1e-300 and subnormals) and huge ones.
        for w in [
            vec![1e-300; 5],
            vec![5e-324, 5e-324, 1e-320],
            vec![1e300, 1e300, 1e300],
            vec![f64::MAX, f64::MAX],
        ] {
            if let Some(r) = t.no_panic(&format!("resample[{}]({:e})", s.name(), w[0]), || {
                resample(s, &w, None, 1)
            }) {
                match r {
                    Ok(idx) => t.check(
                        &format!("resample[{}]({:e}) indices in range", s.name(), w[0]),
                        idx.len() == w.len() && idx.iter().all(|&i| i < w.len()),
                        &idx,
                    ),
                    Err(e) => t.check(
                        &format!("resample[{}]({:e}) names weights", s.name(), w[0]),
                        e.to_string().contains("weights"),
                        e.to_string(),
                    ),
                }
            }
        }
    }
    // Acquisition.
    let mut out = [0.0; 3];
    t.err("ucb_into", "std|mean", || {
        ucb_into(&[0.0; 3], &[1.0; 2], 1.0, &mut out)
    });
    t.err("ucb_into", "std", || {
        ucb_into(&[0.0; 3], &[1.0, -1.0, 1.0], 1.0, &mut out)
    });
    t.err("ucb_into", "mean", || {
        ucb_into(&[0.0, f64::NAN, 0.0], &[1.0; 3], 1.0, &mut out)
    });
    t.err("ucb_into", "beta", || {
        ucb_into(&[0.0; 3], &[1.0; 3], f64::NAN, &mut out)
    });
    t.err("ucb_into", "out", || {
        ucb_into(&[0.0; 3], &[1.0; 3], 1.0, &mut out[..2])
    });
    for k in [Improvement::Expected, Improvement::LogExpected] {
        t.err("improvement_into", "best", || {
            improvement_into(k, &[0.0; 3], &[1.0; 3], f64::NAN, 0.0, &mut out)
        });
        t.err("improvement_into", "xi", || {
            improvement_into(k, &[0.0; 3], &[1.0; 3], 0.0, f64::INFINITY, &mut out)
        });
        t.err("improvement_into", "std", || {
            improvement_into(k, &[0.0; 3], &[1.0, f64::NAN, 1.0], 0.0, 0.0, &mut out)
        });
        for e in EXTREME {
            if let Some(Ok(())) = t.no_panic("improvement_into(extreme)", || {
                improvement_into(k, &[e, -e, 0.0], &[1e-300, 1e300, 0.0], 0.0, 0.0, &mut out)
            }) {
                t.check(
                    &format!("improvement_into({e:e}) no NaN"),
                    out.iter().all(|v| !v.is_nan()),
                    out,
                );
            }
        }
    }
    t.err("thompson_gaussian", "mean|std", || {
        thompson_gaussian(&[], &[], 0)
    });
    t.err("thompson_gaussian", "std", || {
        thompson_gaussian(&[0.0], &[f64::NAN], 0)
    });
    t.err("select_action", "utilities|weights", || {
        select_action(&[1.0, 2.0, 3.0], &[0.5, 0.5], &mut [0.0; 2])
    });
    t.err("select_action", "weights", || {
        select_action(&[1.0, 2.0], &[f64::NAN], &mut [0.0; 2])
    });
    t.err("ParticleUtilities::new", "utilities", || {
        ParticleUtilities::new(&[1.0, 2.0, 3.0], &[0.5, 0.5], 2)
    });
    t.err("ParticleUtilities::new", "utilities", || {
        ParticleUtilities::new(&[1.0, 2.0], &[1.0], 0)
    });
    t.err("ParticleUtilities::new", "weights", || {
        ParticleUtilities::new(&[1.0, 2.0], &[-1.0], 2)
    });
    let pu = ParticleUtilities::new(&[1.0, 2.0, 3.0, 4.0], &[0.5, 0.5], 2).unwrap();
    t.err("ParticleUtilities::moments_into", "mean|std|out", || {
        pu.moments_into(&mut [0.0], &mut [0.0; 2])
    });
    t.err("ParticleUtilities::expected_utility_into", "out", || {
        pu.expected_utility_into(&mut [0.0; 3])
    });
    t.err("ParticleUtilities::ucb_into", "beta", || {
        pu.ucb_into(f64::NAN, &mut [0.0; 2], &mut [0.0; 2])
    });
    t.err(
        "ParticleUtilities::expected_improvement_into",
        "best",
        || pu.expected_improvement_into(f64::NAN, 0.0, &mut [0.0; 2]),
    );
    t.err(
        "ParticleUtilities::probability_of_improvement_into",
        "xi",
        || pu.probability_of_improvement_into(0.0, f64::NAN, &mut [0.0; 2]),
    );
    t.finish("filters / resampling / acquisition");
}

#[test]
fn eth_ucy_loader_rejects_bad_files() {
    let mut t = Battery::new();
    for bad in [
        "",
        "frame,ped,x,y\n",
        "frame,ped_id,x,y\n0,1,0.0\n",
        "frame,ped_id,x,y\n0,1,nan,0.0\n",
        "frame,ped_id,x,y\n0,1,inf,0.0\n",
        "frame,ped_id,x,y\nzero,1,0.0,0.0\n",
        "frame,ped_id,x,y\n0,1,0.0,0.0,9\n",
        "frame,ped_id,x,y\n0,1,0,0\n0,1,1,1\n",
        "frame,ped_id,x,y\n99999999999999999999,1,0,0\n",
    ] {
        t.err(
            &format!("eth_ucy::parse({bad:?})"),
            "csv|line|frame|x|y|ped",
            || parse(bad),
        );
    }
    // Valid but odd: one point per person (no frame step), frames at the extremes of i64.
    for odd in [
        "frame,ped_id,x,y\n0,1,0.0,0.0\n",
        "frame,ped_id,x,y\n-9223372036854775808,1,0,0\n9223372036854775807,1,1,1\n",
        "frame,ped_id,x,y\n0,1,1e300,-1e300\n10,1,0,0\n",
    ] {
        if let Some(Ok((tracks, step))) =
            t.no_panic(&format!("eth_ucy::parse({odd:?})"), || parse(odd))
        {
            t.check("eth_ucy::parse step > 0", step > 0, step);
            for tr in &tracks {
                let _ = t.no_panic("Track::contiguous_segments", || {
                    tr.contiguous_segments(step)
                });
            }
        }
    }
    t.err("eth_ucy::load", "path|no such|read", || {
        load(std::path::Path::new("/nonexistent/eth.csv"))
    });
    t.finish("eth/ucy");
}
