//! Runtime-dispatched SIMD building blocks.
//!
//! Hot loops are written once as `#[inline(always)]` generic code over a const `FMA` flag and
//! compiled three times: for AVX-512, for AVX2+FMA and for the baseline target. The CPU is
//! probed once; [`SimdLevel::Scalar`] is always available and is what tests compare the wider
//! paths against. Loops are written so LLVM vectorises them (no branches, no libm calls):
//! [`exp`] is a branch-free Cody–Waite reduction with a degree-12 polynomial, accurate to a few
//! ulp on the range the kernels use.

// The split constants are fdlibm's, written with all their published digits.
#![allow(clippy::excessive_precision)]

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction-set tier used for the hot loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Baseline target features only (SSE2 on x86-64); loops still auto-vectorise two-wide.
    Scalar,
    /// AVX2 + FMA (four f64 lanes).
    Avx2,
    /// AVX-512F/DQ + FMA (eight f64 lanes).
    Avx512,
}

const UNSET: u8 = u8::MAX;
static LEVEL_OVERRIDE: AtomicU8 = AtomicU8::new(UNSET);
static DETECTED: AtomicU8 = AtomicU8::new(UNSET);

impl SimdLevel {
    fn from_u8(v: u8) -> Self {
        match v {
            2 => SimdLevel::Avx512,
            1 => SimdLevel::Avx2,
            _ => SimdLevel::Scalar,
        }
    }

    /// The best level this CPU supports.
    #[must_use]
    pub fn detected() -> Self {
        let cached = DETECTED.load(Ordering::Relaxed);
        if cached != UNSET {
            return Self::from_u8(cached);
        }
        let level = detect();
        DETECTED.store(level as u8, Ordering::Relaxed);
        level
    }

    /// The level hot loops use now: the detected one, or a lower one set by
    /// [`SimdLevel::set_override`].
    #[must_use]
    pub fn current() -> Self {
        let o = LEVEL_OVERRIDE.load(Ordering::Relaxed);
        let det = Self::detected();
        if o == UNSET {
            det
        } else {
            Self::from_u8(o).min(det)
        }
    }

    /// Caps the level used by hot loops (process-wide), e.g. to compare paths or to rule SIMD
    /// out while debugging. `None` restores the detected level. A level above what the CPU
    /// supports is clamped to the detected one.
    pub fn set_override(level: Option<SimdLevel>) {
        LEVEL_OVERRIDE.store(level.map_or(UNSET, |l| l as u8), Ordering::Relaxed);
    }

    /// All levels this CPU can run, lowest first.
    #[must_use]
    pub fn available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|l| *l <= Self::detected())
            .collect()
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> SimdLevel {
    // Each level detects every feature its `#[target_feature]` functions enable (AVX2 is
    // checked for the AVX-512 level too): the `unsafe` dispatch relies on exactly this.
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        SimdLevel::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        SimdLevel::Avx2
    } else {
        SimdLevel::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> SimdLevel {
    SimdLevel::Scalar
}

/// A unit of hot-loop work compiled once per [`SimdLevel`].
///
/// Implementations mark `run` `#[inline(always)]` (and everything it calls), so that the body
/// is compiled with the target features of the dispatching function.
pub trait SimdTask {
    /// What the task returns.
    type Output;
    /// Runs the task; `FMA` says whether fused multiply-add is available in hardware.
    fn run<const FMA: bool>(self) -> Self::Output;
}

/// Runs `task` at [`SimdLevel::current`].
#[inline]
pub fn dispatch<T: SimdTask>(task: T) -> T::Output {
    dispatch_at(SimdLevel::current(), task)
}

/// Runs `task` at `level` (clamped to what the CPU supports).
#[inline]
pub fn dispatch_at<T: SimdTask>(level: SimdLevel, task: T) -> T::Output {
    let level = level.min(SimdLevel::detected());
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            // SAFETY: `level` was clamped to `detected()`, and `detect` returns Avx512 only
            // after finding AVX-512F/DQ, AVX2 and FMA — the features `run_avx512` enables.
            SimdLevel::Avx512 => unsafe { run_avx512(task) },
            // SAFETY: as above; Avx2 is only detected with AVX2 and FMA present.
            SimdLevel::Avx2 => unsafe { run_avx2(task) },
            SimdLevel::Scalar => task.run::<false>(),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        task.run::<false>()
    }
}

/// Runs `task` compiled with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512DQ, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn run_avx512<T: SimdTask>(task: T) -> T::Output {
    task.run::<true>()
}

/// Runs `task` compiled with AVX2 + FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T: SimdTask>(task: T) -> T::Output {
    task.run::<true>()
}

/// `a * b + c`, fused when the hardware has FMA.
#[inline(always)]
#[must_use]
pub fn mul_add<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Branch-free `2^y` that LLVM vectorises.
///
/// `y = k + f` with `k` the nearest integer and `|f| <= 1/2`; `2^f` is a degree-10
/// polynomial fitted for relative error (3.8e-16 on its own); `2^k` is built in the exponent
/// bits. Returns `0.0` for `y < -1022` (where the true value is subnormal, < 2.3e-308) and
/// saturates at `2^1023·2^f` above `1023`. Inputs must not be NaN.
///
/// ```
/// use intent_engine::linalg::simd::exp2;
/// for y in [-1000.0, -3.7, -1e-9, 0.0, 0.5, 42.0] {
///     let (a, b) = (exp2::<false>(y), y.exp2());
///     assert!(((a - b) / b).abs() < 5e-16, "{y}: {a} vs {b}");
/// }
/// ```
#[inline(always)]
#[must_use]
pub fn exp2<const FMA: bool>(y: f64) -> f64 {
    // Adding 1.5 * 2^52 rounds to the nearest integer and leaves it in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const LO: f64 = -1022.0;
    const HI: f64 = 1023.0;
    // Least-squares fit of 2^f on [-1/2, 1/2] at Chebyshev nodes, weighted for relative
    // error, with the constant term pinned to 1 (computed with 40-digit arithmetic).
    const C: [f64; 11] = [
        1.0,
        0.693_147_180_559_949_7,
        0.240_226_506_959_092_5,
        0.055_504_108_664_46,
        0.009_618_129_107_933_6,
        0.001_333_355_822_839_281_3,
        0.000_154_035_300_483_087_3,
        1.525_265_820_676_461_7e-5,
        1.321_562_959_037_192_8e-6,
        1.020_852_183_362_834e-7,
        7.041_923_263_577_725e-9,
    ];
    // Plain selects (not f64::clamp, which checks its bounds and has NaN rules).
    #[allow(clippy::manual_clamp)]
    let yc = if y < LO {
        LO
    } else if y > HI {
        HI
    } else {
        y
    };
    let t = yc + SHIFT;
    let k = t - SHIFT;
    let f = yc - k; // exact (Sterbenz)
    let mut p = C[10];
    p = mul_add::<FMA>(p, f, C[9]);
    p = mul_add::<FMA>(p, f, C[8]);
    p = mul_add::<FMA>(p, f, C[7]);
    p = mul_add::<FMA>(p, f, C[6]);
    p = mul_add::<FMA>(p, f, C[5]);
    p = mul_add::<FMA>(p, f, C[4]);
    p = mul_add::<FMA>(p, f, C[3]);
    p = mul_add::<FMA>(p, f, C[2]);
    p = mul_add::<FMA>(p, f, C[1]);
    p = mul_add::<FMA>(p, f, C[0]);
    // 2^k from the integer left in t's mantissa: (k + 1023) << 52.
    let ki = t.to_bits().wrapping_sub(SHIFT.to_bits());
    let scale = f64::from_bits(ki.wrapping_add(1023) << 52);
    let r = p * scale;
    if y < LO {
        0.0
    } else {
        r
    }
}

/// Branch-free `exp(x) = 2^(x log₂e)` that LLVM vectorises (see [`exp2`]).
///
/// Relative error below `4e-16 + 2.5e-16·|x|`: the rounding of `x log₂e` costs `|x|`·1e-16,
/// the same order as the effect of rounding `x` itself. Returns `0.0` below `-708.39`.
///
/// ```
/// use intent_engine::linalg::simd::exp;
/// for x in [-700.0, -3.7, -1e-9, 0.0, 0.5, 42.0] {
///     let (a, b) = (exp::<false>(x), x.exp());
///     assert!(((a - b) / b).abs() < 4e-16 + 2.5e-16 * x.abs(), "{x}: {a} vs {b}");
/// }
/// ```
#[inline(always)]
#[must_use]
pub fn exp<const FMA: bool>(x: f64) -> f64 {
    exp2::<FMA>(x * std::f64::consts::LOG2_E)
}

/// Branch-free natural logarithm that LLVM vectorises, for positive normal `x`.
///
/// Relative error below 4e-16 away from `x = 1` (absolute below 2e-16 near it). Zero,
/// negative, subnormal and non-finite inputs are not supported (the kernels only take
/// logarithms of values ≥ 1).
///
/// ```
/// use intent_engine::linalg::simd::ln;
/// for x in [1e-300, 0.3, 1.0, 1.0 + 1e-12, 2.0, 1e300] {
///     assert!((ln::<false>(x) - x.ln()).abs() <= 4e-16 * x.ln().abs().max(1.0));
/// }
/// ```
#[inline(always)]
#[must_use]
pub fn ln<const FMA: bool>(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    // 2^52 as a double: OR-ing a small integer into its mantissa converts it exactly.
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let bits = x.to_bits();
    // Mantissa m in [1, 2) and biased exponent e.
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let e_biased = f64::from_bits((bits >> 52) | TWO52.to_bits()) - TWO52;
    // Centre m on 1: m in [√2/2, √2).
    let big = m > SQRT2;
    let m = if big { 0.5 * m } else { m };
    let e = e_biased - 1023.0 + if big { 1.0 } else { 0.0 };
    // ln m = 2 atanh(z), z = (m-1)/(m+1), |z| <= 0.1716: odd series to z^21.
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut p = 1.0 / 21.0;
    p = mul_add::<FMA>(p, z2, 1.0 / 19.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 17.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 15.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 13.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 11.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 9.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 7.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 5.0);
    p = mul_add::<FMA>(p, z2, 1.0 / 3.0);
    // 2z + 2z·z²·p, then e·ln2 split so the large part is exact.
    let lnm = mul_add::<FMA>(2.0 * z * z2, p, 2.0 * z);
    mul_add::<FMA>(e, LN2_HI, mul_add::<FMA>(e, LN2_LO, lnm))
}

/// Branch-free `sin²(x)` that LLVM vectorises, for `|x| < 2^20`.
///
/// Absolute error below 2e-16 (plus `|x|`·1e-22 from the argument reduction).
///
/// ```
/// use intent_engine::linalg::simd::sin2;
/// for x in [0.0, 1e-8, 0.7, 3.0, -10.0, 1234.5] {
///     assert!((sin2::<false>(x) - x.sin().powi(2)).abs() < 1e-15);
/// }
/// ```
#[inline(always)]
#[must_use]
pub fn sin2<const FMA: bool>(x: f64) -> f64 {
    const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
    // π/2 split in three (fdlibm's pio2_1, pio2_1t's leading part, and the rest).
    const PIO2_1: f64 = 1.570_796_326_734_125_614_17;
    const PIO2_2: f64 = 6.077_100_506_303_965_976_6e-11;
    const PIO2_3: f64 = 2.022_266_248_795_950_732_4e-21;
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let t = mul_add::<FMA>(x, TWO_OVER_PI, SHIFT);
    let q = t - SHIFT;
    let r = mul_add::<FMA>(
        -q,
        PIO2_3,
        mul_add::<FMA>(-q, PIO2_2, mul_add::<FMA>(-q, PIO2_1, x)),
    );
    let odd = (t.to_bits() & 1) == 1;
    let r2 = r * r;
    // sin r / r and cos r as Taylor series in r² (|r| <= π/4).
    let mut s = -1.0 / 1_307_674_368_000.0; // -1/15!
    s = mul_add::<FMA>(s, r2, 1.0 / 6_227_020_800.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 39_916_800.0);
    s = mul_add::<FMA>(s, r2, 1.0 / 362_880.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 5_040.0);
    s = mul_add::<FMA>(s, r2, 1.0 / 120.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 6.0);
    let sin_r = mul_add::<FMA>(r * r2, s, r);
    let mut c = 1.0 / 20_922_789_888_000.0; // 1/16!
    c = mul_add::<FMA>(c, r2, -1.0 / 87_178_291_200.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 479_001_600.0);
    c = mul_add::<FMA>(c, r2, -1.0 / 3_628_800.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 40_320.0);
    c = mul_add::<FMA>(c, r2, -1.0 / 720.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 24.0);
    c = mul_add::<FMA>(c, r2, -0.5);
    let cos_r = mul_add::<FMA>(c, r2, 1.0);
    let v = if odd { cos_r } else { sin_r };
    v * v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    struct ExpSlice<'a>(&'a [f64], &'a mut [f64]);
    impl SimdTask for ExpSlice<'_> {
        type Output = ();
        #[inline(always)]
        fn run<const FMA: bool>(self) {
            for (o, &x) in self.1.iter_mut().zip(self.0) {
                *o = exp::<FMA>(x);
            }
        }
    }

    #[test]
    fn exp_matches_std_at_every_level() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let xs: Vec<f64> = (0..20_000)
            .map(|i| match i % 4 {
                0 => rng.random_range(-708.0..709.0),
                1 => rng.random_range(-40.0..0.0),
                2 => rng.random_range(-1e-6..1e-6),
                _ => -rng.random_range(0.0f64..30.0).powi(2) * 0.5,
            })
            .chain([0.0, -0.0, 1.0, -1.0, -708.0, 709.0, 0.346_573_590_279_972_6])
            .collect();
        for level in SimdLevel::available() {
            let mut out = vec![0.0; xs.len()];
            dispatch_at(level, ExpSlice(&xs, &mut out));
            for (&x, &y) in xs.iter().zip(&out) {
                let want = x.exp();
                let rel = ((y - want) / want).abs();
                let tol = 4e-16 + 2.5e-16 * x.abs();
                assert!(
                    rel < tol,
                    "{level:?}: exp({x}) = {y}, want {want} (rel {rel:e})"
                );
            }
        }
    }

    #[test]
    fn exp_saturates_outside_range() {
        assert_eq!(exp::<false>(-1000.0), 0.0);
        assert_eq!(exp::<false>(-708.5), 0.0);
        assert!(exp::<false>(800.0).is_finite());
        assert_eq!(exp::<false>(800.0), exp2::<false>(1023.0));
        assert_eq!(exp2::<false>(-1022.5), 0.0);
        assert_eq!(exp2::<false>(-1022.0), 2f64.powi(-1022));
    }

    #[test]
    fn override_clamps_to_detected() {
        SimdLevel::set_override(Some(SimdLevel::Avx512));
        assert!(SimdLevel::current() <= SimdLevel::detected());
        SimdLevel::set_override(None);
        assert_eq!(SimdLevel::current(), SimdLevel::detected());
    }

    struct Map<'a>(&'a [f64], &'a mut [f64], u8);
    impl SimdTask for Map<'_> {
        type Output = ();
        #[inline(always)]
        fn run<const FMA: bool>(self) {
            let which = self.2;
            for (o, &x) in self.1.iter_mut().zip(self.0) {
                *o = if which == 0 {
                    ln::<FMA>(x)
                } else {
                    sin2::<FMA>(x)
                };
            }
        }
    }

    #[test]
    fn ln_and_sin2_match_std_at_every_level() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let xs: Vec<f64> = (0..20_000)
            .map(|i| match i % 3 {
                0 => 10f64.powf(rng.random_range(-300.0..300.0)),
                1 => 1.0 + rng.random_range(0.0..1e-3),
                _ => rng.random_range(0.5..4.0),
            })
            .chain([1.0, 2.0, std::f64::consts::SQRT_2, 0.5])
            .collect();
        let angles: Vec<f64> = (0..20_000)
            .map(|i| match i % 3 {
                0 => rng.random_range(-1e4..1e4),
                1 => rng.random_range(-1e-3..1e-3),
                _ => rng.random_range(-7.0..7.0),
            })
            .chain([
                0.0,
                std::f64::consts::FRAC_PI_2,
                std::f64::consts::PI,
                3.0 * std::f64::consts::FRAC_PI_4,
            ])
            .collect();
        for level in SimdLevel::available() {
            let mut out = vec![0.0; xs.len()];
            dispatch_at(level, Map(&xs, &mut out, 0));
            for (&x, &y) in xs.iter().zip(&out) {
                let want = x.ln();
                let err = (y - want).abs();
                assert!(
                    err <= 4e-16 * want.abs().max(0.5),
                    "{level:?}: ln({x}) = {y}, want {want}"
                );
            }
            let mut out = vec![0.0; angles.len()];
            dispatch_at(level, Map(&angles, &mut out, 1));
            for (&x, &y) in angles.iter().zip(&out) {
                let want = x.sin().powi(2);
                let err = (y - want).abs();
                assert!(
                    err <= 4e-16 + 1e-20 * x.abs(),
                    "{level:?}: sin2({x}) = {y}, want {want} ({err:e})"
                );
            }
        }
    }
}
