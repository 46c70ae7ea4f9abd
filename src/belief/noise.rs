//! Fast, seeded random numbers for the propagation loops.
//!
//! Each fill draws one 64-bit key from the chunk's ChaCha8 stream and then expands it with a
//! counter-based SplitMix64 (`mix(key + i·γ)`, the generator behind Java's `SplittableRandom`,
//! which passes BigCrush): the expansion is a pure function of the index, so LLVM vectorises it
//! (AVX-512DQ has 64-bit multiplies), and results stay a deterministic function of the seed and
//! the chunk — never of the thread count. Normals use a vectorised Box–Muller transform built
//! on the crate's branch-free `ln` and a short sine/cosine polynomial (absolute error below
//! 1e-15); Box–Muller is exact in distribution.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::linalg::simd::{self, mul_add, SimdTask};

const TWO_M53: f64 = 1.0 / 9_007_199_254_740_992.0;

/// A uniform in `(0, 1]` from 53 random bits.
#[inline(always)]
pub(crate) fn open_closed(bits: u64) -> f64 {
    ((bits >> 11) + 1) as f64 * TWO_M53
}

/// A uniform in `[0, 1)` from 53 random bits.
#[inline(always)]
pub(crate) fn closed_open(bits: u64) -> f64 {
    (bits >> 11) as f64 * TWO_M53
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th uniform in `[0, 1)` of the counter stream of `key` (what [`fill_uniform`]
/// writes at index `i`), for kernels that draw inside their own loops.
#[inline(always)]
pub(crate) fn uniform_at(key: u64, i: u64) -> f64 {
    closed_open(mix(key.wrapping_add(i.wrapping_mul(GAMMA))))
}

/// The `i`-th pair of independent standard normals of the counter stream of `key`
/// (Box–Muller on uniforms `2i` and `2i + 1`), for kernels that draw inside their own loops.
#[inline(always)]
pub(crate) fn normal_pair_at<const FMA: bool>(key: u64, i: u64) -> (f64, f64) {
    let c0 = key.wrapping_add((2 * i).wrapping_mul(GAMMA));
    let u1 = open_closed(mix(c0));
    let u2 = closed_open(mix(c0.wrapping_add(GAMMA)));
    let r = (-2.0 * simd::ln::<FMA>(u1)).sqrt();
    let (s, c) = sincos_2pi::<FMA>(u2);
    (r * c, r * s)
}

/// Fills `out` with uniforms in `[0, 1)`.
pub fn fill_uniform(rng: &mut ChaCha8Rng, out: &mut [f64]) {
    let key = rng.next_u64();
    simd::dispatch(Uniforms { key, out });
}

struct Uniforms<'a> {
    key: u64,
    out: &'a mut [f64],
}

impl SimdTask for Uniforms<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let key = self.key;
        for (i, x) in self.out.iter_mut().enumerate() {
            *x = uniform_at(key, i as u64);
        }
    }
}

/// Fills `out` with standard normals (Box–Muller on pairs of uniforms).
///
/// ```
/// use intent_engine::belief::noise::fill_normal;
/// use rand::SeedableRng;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut z = vec![0.0; 100_001];
/// fill_normal(&mut rng, &mut z);
/// let mean = z.iter().sum::<f64>() / z.len() as f64;
/// let var = z.iter().map(|x| x * x).sum::<f64>() / z.len() as f64 - mean * mean;
/// assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02);
/// ```
pub fn fill_normal(rng: &mut ChaCha8Rng, out: &mut [f64]) {
    let h = out.len() / 2;
    let key = rng.next_u64();
    let (a, rest) = out.split_at_mut(h);
    let (b, tail) = rest.split_at_mut(h);
    simd::dispatch(BoxMuller { key, a, b });
    if let Some(t) = tail.first_mut() {
        let (mut one, mut two) = ([0.0], [0.0]);
        simd::dispatch(BoxMuller {
            key: rng.next_u64(),
            a: &mut one,
            b: &mut two,
        });
        *t = one[0];
    }
}

/// `(a[i], b[i]) = (r cos θ, r sin θ)` with `r = √(−2 ln u₁)`, `θ = 2π u₂`, the uniforms
/// drawn from the counter stream of `key`.
struct BoxMuller<'a> {
    key: u64,
    a: &'a mut [f64],
    b: &'a mut [f64],
}

impl SimdTask for BoxMuller<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        let key = self.key;
        for (i, (x, y)) in self.a.iter_mut().zip(self.b.iter_mut()).enumerate() {
            (*x, *y) = normal_pair_at::<FMA>(key, i as u64);
        }
    }
}

/// `(sin 2πu, cos 2πu)` for `u ∈ [0, 1)`, branch-free.
#[inline(always)]
fn sincos_2pi<const FMA: bool>(u: f64) -> (f64, f64) {
    // Quadrant q = ⌊4u⌋, angle 2πu = qπ/2 + π/4 + r with |r| ≤ π/4.
    let q = (u * 4.0).floor();
    let r = (u - q * 0.25) * std::f64::consts::TAU - std::f64::consts::FRAC_PI_4;
    let r2 = r * r;
    let mut s = -1.0 / 1_307_674_368_000.0;
    s = mul_add::<FMA>(s, r2, 1.0 / 6_227_020_800.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 39_916_800.0);
    s = mul_add::<FMA>(s, r2, 1.0 / 362_880.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 5_040.0);
    s = mul_add::<FMA>(s, r2, 1.0 / 120.0);
    s = mul_add::<FMA>(s, r2, -1.0 / 6.0);
    let sin_r = mul_add::<FMA>(r * r2, s, r);
    let mut c = 1.0 / 20_922_789_888_000.0;
    c = mul_add::<FMA>(c, r2, -1.0 / 87_178_291_200.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 479_001_600.0);
    c = mul_add::<FMA>(c, r2, -1.0 / 3_628_800.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 40_320.0);
    c = mul_add::<FMA>(c, r2, -1.0 / 720.0);
    c = mul_add::<FMA>(c, r2, 1.0 / 24.0);
    c = mul_add::<FMA>(c, r2, -0.5);
    let cos_r = mul_add::<FMA>(r2, c, 1.0);
    // φ = qπ/2 + π/4: (sin φ, cos φ) = h·(+,+), (+,−), (−,−), (−,+) for q = 0..3.
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let sp = if q < 1.5 { h } else { -h };
    let cp = if (0.5..=2.5).contains(&q) { -h } else { h };
    // sin(φ + r) = sin φ cos r + cos φ sin r; cos(φ + r) = cos φ cos r − sin φ sin r.
    (
        mul_add::<FMA>(sp, cos_r, cp * sin_r),
        mul_add::<FMA>(cp, cos_r, -(sp * sin_r)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sincos_matches_libm() {
        for k in 0..10_000 {
            let u = k as f64 / 10_000.0;
            let (s, c) = sincos_2pi::<false>(u);
            let t = u * std::f64::consts::TAU;
            assert!(
                (s - t.sin()).abs() < 2e-15 && (c - t.cos()).abs() < 2e-15,
                "{u}"
            );
        }
    }

    #[test]
    fn normals_have_the_right_moments_and_tails() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut z = vec![0.0; 400_000];
        fill_normal(&mut rng, &mut z);
        let n = z.len() as f64;
        let m4 = z.iter().map(|x| x.powi(4)).sum::<f64>() / n;
        assert!((m4 - 3.0).abs() < 0.06, "kurtosis {m4}");
        let tail = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / n;
        assert!((tail - 0.0455).abs() < 0.002, "P(|z|>2) = {tail}");
    }
}
