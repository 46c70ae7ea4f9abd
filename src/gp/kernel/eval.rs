//! Row-by-row evaluation of kernel matrices and their gradients.
//!
//! The second input set is transposed into `KernelWorkspace::inputs` once per leaf (scaled by
//! the leaf's length scales where it has them), so a row of `K` is a few contiguous passes that
//! LLVM vectorises. Each leaf-row evaluation is dispatched to the best SIMD tier; sums and
//! products combine rows in plain code. Row blocks are independent, so the parallel result is
//! the sequential one.

use std::f64::consts::PI;

use ndarray::ArrayView2;

use super::{KernelWorkspace, MaternNu, Node};
use crate::linalg::simd::{dispatch_at, exp, exp2, ln, mul_add, sin2, SimdLevel, SimdTask};
use crate::linalg::Par;

/// Below this many matrix entries a call stays on one thread (spawn cost dominates).
const PAR_MIN_ENTRIES: usize = 16 * 1024;
/// Results at least this large are written with non-temporal stores.
const STREAM_MIN_BYTES: usize = 4 << 20;
/// Rows of the gradient contraction summed per block; fixed so sums are thread-count independent.
const DOT_BLOCK_ROWS: usize = 16;

struct Ctx<'a> {
    x1: ArrayView2<'a, f64>,
    inputs: &'a [f64],
    offsets: &'a [usize],
    n2: usize,
    d: usize,
    same: bool,
    level: SimdLevel,
}

/// Transposes (and scales) `x2` for every leaf that reads it.
fn prepare(node: &Node, x2: &ArrayView2<'_, f64>, ws: &mut KernelWorkspace) {
    ws.inputs.clear();
    ws.offsets.clear();
    prepare_rec(node, x2, ws);
}

fn prepare_rec(node: &Node, x2: &ArrayView2<'_, f64>, ws: &mut KernelWorkspace) {
    match node {
        Node::Sum(a, b) | Node::Product(a, b) => {
            prepare_rec(a, x2, ws);
            prepare_rec(b, x2, ws);
        }
        leaf => {
            ws.offsets.push(ws.inputs.len());
            if !leaf.needs_inputs() {
                return;
            }
            let ls: Option<&[f64]> = match leaf {
                Node::SquaredExponential { ls, .. }
                | Node::Matern { ls, .. }
                | Node::RationalQuadratic { ls, .. } => Some(ls),
                _ => None,
            };
            let (n2, d) = x2.dim();
            for k in 0..d {
                match ls {
                    // Divide (not multiply by 1/ℓ) to match the usual `X / length_scale`.
                    Some(ls) => {
                        let l = ls[if ls.len() == 1 { 0 } else { k }];
                        ws.inputs.extend(x2.column(k).iter().map(|v| v / l));
                    }
                    None => ws.inputs.extend(x2.column(k).iter().copied()),
                }
            }
            debug_assert_eq!(ws.inputs.len() % n2.max(1), 0);
        }
    }
}

/// Squared distances from row `i` of `x1` to columns `j0..j0+out.len()` of the prepared input.
#[inline(always)]
fn sqdist<const FMA: bool>(
    ctx: &Ctx<'_>,
    off: usize,
    ls: Option<&[f64]>,
    i: usize,
    j0: usize,
    out: &mut [f64],
) {
    let w = out.len();
    for o in out.iter_mut() {
        *o = 0.0;
    }
    for k in 0..ctx.d {
        let a = match ls {
            Some(ls) => ctx.x1[[i, k]] / ls[if ls.len() == 1 { 0 } else { k }],
            None => ctx.x1[[i, k]],
        };
        let start = off + k * ctx.n2 + j0;
        let col = &ctx.inputs[start..start + w];
        for (o, &b) in out.iter_mut().zip(col) {
            let t = a - b;
            *o = mul_add::<FMA>(t, t, *o);
        }
    }
}

#[inline(always)]
fn scaled_col<'c>(
    ctx: &'c Ctx<'_>,
    off: usize,
    ls: &[f64],
    i: usize,
    k: usize,
    j0: usize,
    w: usize,
) -> (f64, &'c [f64]) {
    let a = ctx.x1[[i, k]] / ls[if ls.len() == 1 { 0 } else { k }];
    let start = off + k * ctx.n2 + j0;
    (a, &ctx.inputs[start..start + w])
}

/// Matérn value and `g(r)` with `∂k/∂log ℓₖ = g(r) rₖ²`, from the squared distance `s`.
#[inline(always)]
fn matern<const FMA: bool>(nu: MaternNu, variance: f64, s: f64) -> (f64, f64) {
    let r = s.sqrt();
    match nu {
        MaternNu::Half => {
            let e = variance * exp::<FMA>(-r);
            (e, if r > 0.0 { e / r } else { 0.0 })
        }
        MaternNu::ThreeHalves => {
            let t = 3f64.sqrt() * r;
            let e = variance * exp::<FMA>(-t);
            ((1.0 + t) * e, 3.0 * e)
        }
        MaternNu::FiveHalves => {
            let t = 5f64.sqrt() * r;
            let e = variance * exp::<FMA>(-t);
            ((1.0 + t + t * t / 3.0) * e, 5.0 / 3.0 * (1.0 + t) * e)
        }
    }
}

/// An elementwise map from a squared distance to a kernel value.
trait Transform {
    fn apply<const FMA: bool>(&self, s: f64) -> f64;
}

struct SeT(f64);
impl Transform for SeT {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, s: f64) -> f64 {
        // exp(-s/2) as 2^(s · (-log₂e / 2)): one multiply fewer per entry.
        self.0 * exp2::<FMA>(s * (-0.5 * std::f64::consts::LOG2_E))
    }
}

struct MaternT<const NU2: u8>(f64);
impl<const NU2: u8> Transform for MaternT<NU2> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, s: f64) -> f64 {
        let nu = match NU2 {
            1 => MaternNu::Half,
            3 => MaternNu::ThreeHalves,
            _ => MaternNu::FiveHalves,
        };
        matern::<FMA>(nu, self.0, s).0
    }
}

struct RqT {
    variance: f64,
    alpha: f64,
}
impl Transform for RqT {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, s: f64) -> f64 {
        // base^(-α) = exp(-α ln base), both vectorised (base >= 1).
        self.variance * exp::<FMA>(-self.alpha * ln::<FMA>(1.0 + s / (2.0 * self.alpha)))
    }
}

struct PeriodicT {
    variance: f64,
    ls: f64,
    period: f64,
}
impl Transform for PeriodicT {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, s: f64) -> f64 {
        // sin²(π u) has period 1 in u: reduce exactly (u − round(u) is exact in floating
        // point) so `sin2` stays inside its |x| < 2^20 domain for any distance.
        let u = s.sqrt() / self.period;
        let s2 = sin2::<FMA>(PI * (u - u.round()));
        self.variance * exp::<FMA>(-2.0 * s2 / (self.ls * self.ls))
    }
}

/// `out[j] = t(Σₖ (aₖ − B[k, j0 + j])²)` in one pass, for a compile-time dimension `D`.
#[inline(always)]
fn fused<const FMA: bool, const D: usize, T: Transform>(
    ctx: &Ctx<'_>,
    off: usize,
    ls: Option<&[f64]>,
    i: usize,
    j0: usize,
    out: &mut [f64],
    t: &T,
) {
    let w = out.len();
    let mut a = [0.0; D];
    let mut cols: [&[f64]; D] = [&[]; D];
    for k in 0..D {
        a[k] = match ls {
            Some(ls) => ctx.x1[[i, k]] / ls[if ls.len() == 1 { 0 } else { k }],
            None => ctx.x1[[i, k]],
        };
        let start = off + k * ctx.n2 + j0;
        cols[k] = &ctx.inputs[start..start + w];
    }
    for (j, o) in out.iter_mut().enumerate() {
        let mut s = 0.0;
        for k in 0..D {
            let d = a[k] - cols[k][j];
            s = mul_add::<FMA>(d, d, s);
        }
        *o = t.apply::<FMA>(s);
    }
}

/// Distance-based leaf row: fused single pass for d ≤ 4, separate passes otherwise.
#[inline(always)]
fn dist_row<const FMA: bool, T: Transform>(
    ctx: &Ctx<'_>,
    off: usize,
    ls: Option<&[f64]>,
    i: usize,
    j0: usize,
    out: &mut [f64],
    t: &T,
) {
    match ctx.d {
        1 => fused::<FMA, 1, T>(ctx, off, ls, i, j0, out, t),
        2 => fused::<FMA, 2, T>(ctx, off, ls, i, j0, out, t),
        3 => fused::<FMA, 3, T>(ctx, off, ls, i, j0, out, t),
        4 => fused::<FMA, 4, T>(ctx, off, ls, i, j0, out, t),
        _ => {
            sqdist::<FMA>(ctx, off, ls, i, j0, out);
            for o in out.iter_mut() {
                *o = t.apply::<FMA>(*o);
            }
        }
    }
}

/// Width of the pieces a streamed row is computed in: 8 cache lines, small enough that the
/// streaming stores of one piece drain while the next is computed.
const PIECE: usize = 64;

/// Computes a whole row of a distance-based leaf straight into `dst` in aligned pieces of
/// [`PIECE`] columns, each built in a stack buffer and written with non-temporal stores.
#[inline(always)]
fn dist_row_streamed<const FMA: bool, T: Transform>(
    ctx: &Ctx<'_>,
    off: usize,
    ls: Option<&[f64]>,
    i: usize,
    dst: &mut [f64],
    t: &T,
) {
    let n2 = dst.len();
    let align = if ctx.level == SimdLevel::Avx512 {
        64
    } else {
        16
    };
    let head = dst.as_ptr().align_offset(align).min(n2);
    dist_row::<FMA, T>(ctx, off, ls, i, 0, &mut dst[..head], t);
    let mut buf = [0.0; PIECE];
    let mut j = head;
    while j + PIECE <= n2 {
        dist_row::<FMA, T>(ctx, off, ls, i, j, &mut buf, t);
        stream_store(&mut dst[j..j + PIECE], &buf, ctx.level);
        j += PIECE;
    }
    dist_row::<FMA, T>(ctx, off, ls, i, j, &mut dst[j..], t);
}

/// One row of a single distance-based leaf kernel, streamed (see [`dist_row_streamed`]).
struct StreamedRow<'a, 'b> {
    node: &'a Node,
    ctx: &'a Ctx<'b>,
    i: usize,
    dst: &'a mut [f64],
}

impl SimdTask for StreamedRow<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let StreamedRow { node, ctx, i, dst } = self;
        let rest = visit_distance_leaf::<FMA, _>(node, StreamedVisitor { ctx, i, dst });
        debug_assert!(rest.is_none(), "only distance-based leaves are streamed");
    }
}

struct StreamedVisitor<'a, 'b> {
    ctx: &'a Ctx<'b>,
    i: usize,
    dst: &'a mut [f64],
}

impl DistanceVisitor for StreamedVisitor<'_, '_> {
    #[inline(always)]
    fn visit<const FMA: bool, T: Transform>(self, ls: Option<&[f64]>, t: &T) {
        dist_row_streamed::<FMA, T>(self.ctx, 0, ls, self.i, self.dst, t);
    }
}

/// What to do with a distance-based leaf once its length scales and transform are known.
trait DistanceVisitor {
    fn visit<const FMA: bool, T: Transform>(self, ls: Option<&[f64]>, t: &T);
}

/// Calls `v` with the length scales (`None`: unscaled inputs) and transform of a
/// distance-based leaf; hands `v` back for any other node.
#[inline(always)]
fn visit_distance_leaf<const FMA: bool, V: DistanceVisitor>(node: &Node, v: V) -> Option<V> {
    match node {
        Node::SquaredExponential { variance, ls } => v.visit::<FMA, _>(Some(ls), &SeT(*variance)),
        Node::Matern { nu, variance, ls } => match nu {
            MaternNu::Half => v.visit::<FMA, _>(Some(ls), &MaternT::<1>(*variance)),
            MaternNu::ThreeHalves => v.visit::<FMA, _>(Some(ls), &MaternT::<3>(*variance)),
            MaternNu::FiveHalves => v.visit::<FMA, _>(Some(ls), &MaternT::<5>(*variance)),
        },
        Node::RationalQuadratic {
            variance,
            ls,
            alpha,
        } => v.visit::<FMA, _>(
            Some(ls),
            &RqT {
                variance: *variance,
                alpha: *alpha,
            },
        ),
        Node::Periodic {
            variance,
            ls,
            period,
        } => v.visit::<FMA, _>(
            None,
            &PeriodicT {
                variance: *variance,
                ls: *ls,
                period: *period,
            },
        ),
        _ => return Some(v),
    }
    None
}

struct LeafRow<'a, 'b> {
    node: &'a Node,
    ctx: &'a Ctx<'b>,
    off: usize,
    i: usize,
    j0: usize,
    out: &'a mut [f64],
}

impl SimdTask for LeafRow<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let LeafRow {
            node,
            ctx,
            off,
            i,
            j0,
            out,
        } = self;
        let visitor = RowVisitor {
            ctx,
            off,
            i,
            j0,
            out,
        };
        let Some(RowVisitor { out, .. }) = visit_distance_leaf::<FMA, _>(node, visitor) else {
            return;
        };
        match node {
            Node::Linear { variance } => {
                for o in out.iter_mut() {
                    *o = 0.0;
                }
                let w = out.len();
                for k in 0..ctx.d {
                    let a = ctx.x1[[i, k]];
                    let start = off + k * ctx.n2 + j0;
                    for (o, &b) in out.iter_mut().zip(&ctx.inputs[start..start + w]) {
                        *o = mul_add::<FMA>(a, b, *o);
                    }
                }
                let v = *variance;
                for o in out.iter_mut() {
                    *o *= v;
                }
            }
            Node::Constant { value } => out.iter_mut().for_each(|o| *o = *value),
            Node::White { noise } => {
                out.iter_mut().for_each(|o| *o = 0.0);
                if ctx.same && i >= j0 && i < j0 + out.len() {
                    out[i - j0] = *noise;
                }
            }
            Node::Sum(..) | Node::Product(..) => unreachable!("composite nodes are not leaves"),
            _ => unreachable!("distance-based leaves were handled above"),
        }
    }
}

struct RowVisitor<'a, 'b> {
    ctx: &'a Ctx<'b>,
    off: usize,
    i: usize,
    j0: usize,
    out: &'a mut [f64],
}

impl DistanceVisitor for RowVisitor<'_, '_> {
    #[inline(always)]
    fn visit<const FMA: bool, T: Transform>(self, ls: Option<&[f64]>, t: &T) {
        dist_row::<FMA, T>(self.ctx, self.off, ls, self.i, self.j0, self.out, t);
    }
}

/// Row `i`, columns `j0..j0+out.len()` of the kernel matrix of `node`.
fn eval_row(
    node: &Node,
    leaf: &mut usize,
    ctx: &Ctx<'_>,
    i: usize,
    j0: usize,
    out: &mut [f64],
    scratch: &mut [f64],
) {
    match node {
        Node::Sum(a, b) | Node::Product(a, b) => {
            let w = out.len();
            let (tmp, rest) = scratch.split_at_mut(w);
            eval_row(a, leaf, ctx, i, j0, out, rest);
            eval_row(b, leaf, ctx, i, j0, tmp, rest);
            if matches!(node, Node::Sum(..)) {
                out.iter_mut().zip(tmp.iter()).for_each(|(o, t)| *o += t);
            } else {
                out.iter_mut().zip(tmp.iter()).for_each(|(o, t)| *o *= t);
            }
        }
        leaf_node => {
            let off = ctx.offsets[*leaf];
            *leaf += 1;
            dispatch_at(
                ctx.level,
                LeafRow {
                    node: leaf_node,
                    ctx,
                    off,
                    i,
                    j0,
                    out,
                },
            );
        }
    }
}

struct LeafRowGrad<'a, 'b> {
    node: &'a Node,
    ctx: &'a Ctx<'b>,
    off: usize,
    i: usize,
    val: &'a mut [f64],
    grad: &'a mut [f64],
    sbuf: &'a mut [f64],
}

impl SimdTask for LeafRowGrad<'_, '_> {
    type Output = ();
    #[inline(always)]
    #[allow(clippy::too_many_lines)]
    fn run<const FMA: bool>(self) {
        let LeafRowGrad {
            node,
            ctx,
            off,
            i,
            val,
            grad,
            sbuf,
        } = self;
        let w = val.len();
        let sbuf = &mut sbuf[..w];
        match node {
            Node::SquaredExponential { variance, ls } => {
                sqdist::<FMA>(ctx, off, Some(ls), i, 0, sbuf);
                for (v, &s) in val.iter_mut().zip(sbuf.iter()) {
                    *v = variance * exp::<FMA>(-0.5 * s);
                }
                let (g0, rest) = grad.split_at_mut(w);
                g0.copy_from_slice(val);
                if ls.len() == 1 {
                    for ((g, &v), &s) in rest.iter_mut().zip(val.iter()).zip(sbuf.iter()) {
                        *g = v * s;
                    }
                } else {
                    for (k, gk) in rest.chunks_exact_mut(w).enumerate() {
                        let (a, col) = scaled_col(ctx, off, ls, i, k, 0, w);
                        for ((g, &v), &b) in gk.iter_mut().zip(val.iter()).zip(col) {
                            let t = a - b;
                            *g = v * t * t;
                        }
                    }
                }
            }
            Node::Matern { nu, variance, ls } => {
                sqdist::<FMA>(ctx, off, Some(ls), i, 0, sbuf);
                let (g0, rest) = grad.split_at_mut(w);
                let iso = ls.len() == 1;
                for ((v, s), g1) in val.iter_mut().zip(sbuf.iter_mut()).zip(rest.iter_mut()) {
                    let (k, g) = matern::<FMA>(*nu, *variance, *s);
                    *v = k;
                    if iso {
                        *g1 = g * *s;
                    }
                    *s = g;
                }
                g0.copy_from_slice(val);
                if !iso {
                    for (k, gk) in rest.chunks_exact_mut(w).enumerate() {
                        let (a, col) = scaled_col(ctx, off, ls, i, k, 0, w);
                        for ((g, &f), &b) in gk.iter_mut().zip(sbuf.iter()).zip(col) {
                            let t = a - b;
                            *g = f * t * t;
                        }
                    }
                }
            }
            Node::RationalQuadratic {
                variance,
                ls,
                alpha,
            } => {
                sqdist::<FMA>(ctx, off, Some(ls), i, 0, sbuf);
                let nl = ls.len();
                let (g0, rest) = grad.split_at_mut(w);
                let (gl, ga) = rest.split_at_mut(nl * w);
                for (j, s) in sbuf.iter_mut().enumerate() {
                    let base = 1.0 + *s / (2.0 * alpha);
                    let k = variance * base.powf(-alpha);
                    val[j] = k;
                    ga[j] = k * (-alpha * base.ln() + *s / (2.0 * base));
                    let f = k / base;
                    if nl == 1 {
                        gl[j] = f * *s;
                    }
                    *s = f;
                }
                g0.copy_from_slice(val);
                if nl > 1 {
                    for (k, gk) in gl.chunks_exact_mut(w).enumerate() {
                        let (a, col) = scaled_col(ctx, off, ls, i, k, 0, w);
                        for ((g, &f), &b) in gk.iter_mut().zip(sbuf.iter()).zip(col) {
                            let t = a - b;
                            *g = f * t * t;
                        }
                    }
                }
            }
            Node::Periodic {
                variance,
                ls,
                period,
            } => {
                sqdist::<FMA>(ctx, off, None, i, 0, sbuf);
                let (g0, rest) = grad.split_at_mut(w);
                let (g1, g2) = rest.split_at_mut(w);
                let il2 = 1.0 / (ls * ls);
                for j in 0..w {
                    let dist = sbuf[j].sqrt();
                    let arg = PI * dist / period;
                    let (sn, cs) = arg.sin_cos();
                    let k = variance * exp::<FMA>(-2.0 * sn * sn * il2);
                    val[j] = k;
                    g0[j] = k;
                    g1[j] = 4.0 * il2 * sn * sn * k;
                    g2[j] = 4.0 * arg * il2 * cs * sn * k;
                }
            }
            Node::Linear { .. } | Node::Constant { .. } | Node::White { .. } => {
                dispatch_at(
                    ctx.level,
                    LeafRow {
                        node,
                        ctx,
                        off,
                        i,
                        j0: 0,
                        out: val,
                    },
                );
                grad[..w].copy_from_slice(val);
            }
            Node::Sum(..) | Node::Product(..) => unreachable!("composite nodes are not leaves"),
        }
    }
}

/// Row `i` of `K(X, X)` into `val` and of each `∂K/∂θ_q` into `grad` (`n_params × n`).
fn eval_row_grad(
    node: &Node,
    leaf: &mut usize,
    ctx: &Ctx<'_>,
    i: usize,
    val: &mut [f64],
    grad: &mut [f64],
    scratch: &mut [f64],
) {
    let w = val.len();
    match node {
        Node::Sum(a, b) | Node::Product(a, b) => {
            let pa = a.n_params() * w;
            let (ga, gb) = grad.split_at_mut(pa);
            let (tmp, rest) = scratch.split_at_mut(w);
            eval_row_grad(a, leaf, ctx, i, val, ga, rest);
            eval_row_grad(b, leaf, ctx, i, tmp, gb, rest);
            if matches!(node, Node::Sum(..)) {
                val.iter_mut().zip(tmp.iter()).for_each(|(v, t)| *v += t);
            } else {
                for g in ga.chunks_exact_mut(w) {
                    g.iter_mut().zip(tmp.iter()).for_each(|(g, t)| *g *= t);
                }
                for g in gb.chunks_exact_mut(w) {
                    g.iter_mut().zip(val.iter()).for_each(|(g, v)| *g *= v);
                }
                val.iter_mut().zip(tmp.iter()).for_each(|(v, t)| *v *= t);
            }
        }
        leaf_node => {
            let off = ctx.offsets[*leaf];
            *leaf += 1;
            dispatch_at(
                ctx.level,
                LeafRowGrad {
                    node: leaf_node,
                    ctx,
                    off,
                    i,
                    val,
                    grad,
                    sbuf: scratch,
                },
            );
        }
    }
}

/// Copies `src` into `dst` with non-temporal stores where the target supports them
/// (whole 64-byte lines with AVX-512, 16-byte pieces with SSE2); the unaligned head and tail
/// use ordinary stores.
fn stream_copy(dst: &mut [f64], src: &[f64], level: SimdLevel) {
    debug_assert_eq!(dst.len(), src.len());
    let align = if level == SimdLevel::Avx512 { 64 } else { 16 };
    let head = dst.as_ptr().align_offset(align).min(dst.len());
    dst[..head].copy_from_slice(&src[..head]);
    let body = stream_store(&mut dst[head..], &src[head..], level);
    dst[head + body..].copy_from_slice(&src[head + body..]);
}

/// Streams the longest prefix of `src` into `dst` that whole non-temporal stores cover
/// (`dst` must be 64-byte aligned for AVX-512, 16-byte otherwise); returns its length.
#[inline(always)]
fn stream_store(dst: &mut [f64], src: &[f64], level: SimdLevel) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if level == SimdLevel::Avx512 {
            // SAFETY: `level` is Avx512 only when the CPU has AVX-512F (SimdLevel::detected).
            unsafe { stream_avx512(dst, src) }
        } else {
            stream_sse2(dst, src)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
        n
    }
}

/// Streams whole 16-byte pairs; `d` must start 16-byte aligned. Returns the count written.
#[cfg(target_arch = "x86_64")]
fn stream_sse2(d: &mut [f64], s: &[f64]) -> usize {
    use std::arch::x86_64::{_mm_loadu_pd, _mm_stream_pd};
    let n = d.len().min(s.len()) / 2 * 2;
    for k in (0..n).step_by(2) {
        // SAFETY: SSE2 is part of the x86_64 baseline; k + 1 < n <= len of both slices;
        // d[k] is 16-byte aligned (d starts aligned, k even).
        unsafe { _mm_stream_pd(d.as_mut_ptr().add(k), _mm_loadu_pd(s.as_ptr().add(k))) };
    }
    n
}

/// Streams whole 64-byte lines; `d` must start 64-byte aligned. Returns the count written.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn stream_avx512(d: &mut [f64], s: &[f64]) -> usize {
    use std::arch::x86_64::{_mm512_loadu_pd, _mm512_stream_pd};
    let n = d.len().min(s.len()) / 8 * 8;
    for k in (0..n).step_by(8) {
        // SAFETY: k + 7 < n <= len of both slices; d[k] is 64-byte aligned (d starts
        // aligned, k a multiple of 8); AVX-512F is guaranteed by the caller.
        unsafe { _mm512_stream_pd(d.as_mut_ptr().add(k), _mm512_loadu_pd(s.as_ptr().add(k))) };
    }
    n
}

/// Orders earlier non-temporal stores before later stores (and before the caller's
/// synchronisation publishes the result to other threads).
fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

#[cfg_attr(not(feature = "rayon"), allow(dead_code))]
fn rows_per_block(n2: usize) -> usize {
    (32 * 1024 / n2.max(1)).max(1)
}

/// Fills `out` (row-major `n1 × n2`) with `K(x1, x2)`.
pub(super) fn matrix(
    node: &Node,
    x1: ArrayView2<'_, f64>,
    x2: Option<ArrayView2<'_, f64>>,
    out: &mut [f64],
    ws: &mut KernelWorkspace,
    par: Par,
) {
    let same = x2.is_none();
    let x2v = x2.unwrap_or(x1);
    let (n1, d) = x1.dim();
    let n2 = x2v.nrows();
    prepare(node, &x2v, ws);
    // Large results bypass the cache: each row is built in L1-resident scratch and streamed
    // out, which saves the read-for-ownership of every output line (the kernel is otherwise
    // memory-bound at n in the thousands).
    let stream = n1 * n2 * std::mem::size_of::<f64>() >= STREAM_MIN_BYTES;
    let scratch_len = (node.depth() + 1 + usize::from(stream)) * n2;
    let ctx = Ctx {
        x1,
        inputs: &ws.inputs,
        offsets: &ws.offsets,
        n2,
        d,
        same,
        level: SimdLevel::current(),
    };
    // A lone distance-based leaf in few dimensions computes straight into the output in
    // streamed pieces, overlapping the stores with the arithmetic.
    let direct = d <= 4
        && matches!(
            node,
            Node::SquaredExponential { .. }
                | Node::Matern { .. }
                | Node::RationalQuadratic { .. }
                | Node::Periodic { .. }
        );
    let block = |r0: usize, chunk: &mut [f64], scratch: &mut [f64]| {
        for (r, row) in chunk.chunks_exact_mut(n2).enumerate() {
            let mut leaf = 0;
            if stream && direct {
                let task = StreamedRow {
                    node,
                    ctx: &ctx,
                    i: r0 + r,
                    dst: row,
                };
                dispatch_at(ctx.level, task);
            } else if stream {
                let (tmp, rest) = scratch.split_at_mut(n2);
                eval_row(node, &mut leaf, &ctx, r0 + r, 0, tmp, rest);
                stream_copy(row, tmp, ctx.level);
            } else {
                eval_row(node, &mut leaf, &ctx, r0 + r, 0, row, scratch);
            }
        }
        if stream {
            stream_fence();
        }
    };
    #[cfg(feature = "rayon")]
    if par.is_parallel() && n1 * n2 >= PAR_MIN_ENTRIES {
        use rayon::prelude::*;
        let rows = rows_per_block(n2);
        par.install(|| {
            out.par_chunks_mut(rows * n2).enumerate().for_each_init(
                || vec![0.0; scratch_len],
                |scratch, (b, chunk)| block(b * rows, chunk, scratch),
            );
        });
        return;
    }
    let _ = (par, PAR_MIN_ENTRIES);
    with_scratch(&mut ws.scratch, scratch_len, |scratch| {
        block(0, out, scratch)
    });
}

/// Runs `f` with the workspace's scratch grown to `len` (no allocation once grown).
fn with_scratch(scratch: &mut Vec<f64>, len: usize, f: impl FnOnce(&mut [f64])) {
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    f(scratch);
}

/// Gradient of `K(x, x)`: stored as `(n, n, p)` in `out`, or contracted with `weights` into
/// `out` (length `p`).
pub(super) fn gradient(
    node: &Node,
    x: ArrayView2<'_, f64>,
    out: &mut [f64],
    weights: Option<ArrayView2<'_, f64>>,
    ws: &mut KernelWorkspace,
    par: Par,
) {
    #[cfg(not(feature = "rayon"))]
    let _ = par; // sequential without the feature
    let (n, d) = x.dim();
    let p = node.n_params();
    prepare(node, &x, ws);
    // val (n) + grad rows (p·n) + per-level scratch ((depth+1)·n).
    let scratch_len = (1 + p + node.depth() + 1) * n;
    let ctx = Ctx {
        x1: x,
        inputs: &ws.inputs,
        offsets: &ws.offsets,
        n2: n,
        d,
        same: true,
        level: SimdLevel::current(),
    };
    let row_grad = |i: usize, buf: &mut [f64]| {
        let (val, rest) = buf.split_at_mut(n);
        let (grad, scratch) = rest.split_at_mut(p * n);
        let mut leaf = 0;
        eval_row_grad(node, &mut leaf, &ctx, i, val, grad, scratch);
    };
    match weights {
        None => {
            let store = |r0: usize, chunk: &mut [f64], buf: &mut [f64]| {
                for (r, orow) in chunk.chunks_exact_mut(n * p).enumerate() {
                    row_grad(r0 + r, buf);
                    let grad = &buf[n..n + p * n];
                    for (j, o) in orow.chunks_exact_mut(p).enumerate() {
                        for (q, oq) in o.iter_mut().enumerate() {
                            *oq = grad[q * n + j];
                        }
                    }
                }
            };
            #[cfg(feature = "rayon")]
            if par.is_parallel() && n * n >= PAR_MIN_ENTRIES {
                use rayon::prelude::*;
                let rows = rows_per_block(n * p);
                par.install(|| {
                    out.par_chunks_mut(rows * n * p).enumerate().for_each_init(
                        || vec![0.0; scratch_len],
                        |buf, (b, chunk)| store(b * rows, chunk, buf),
                    );
                });
                return;
            }
            let mut buf = vec![0.0; scratch_len];
            store(0, out, &mut buf);
        }
        Some(wts) => {
            let dot_block = |b: usize, buf: &mut [f64], acc: &mut [f64]| {
                acc.iter_mut().for_each(|a| *a = 0.0);
                for i in b * DOT_BLOCK_ROWS..((b + 1) * DOT_BLOCK_ROWS).min(n) {
                    row_grad(i, buf);
                    let grad = &buf[n..n + p * n];
                    let wrow = wts.row(i);
                    for (q, a) in acc.iter_mut().enumerate() {
                        let g = &grad[q * n..(q + 1) * n];
                        *a += g.iter().zip(wrow.iter()).map(|(g, w)| g * w).sum::<f64>();
                    }
                }
            };
            let nblocks = n.div_ceil(DOT_BLOCK_ROWS);
            let mut partial = vec![0.0; nblocks * p];
            #[cfg_attr(not(feature = "rayon"), allow(unused_mut))]
            let mut done = false;
            #[cfg(feature = "rayon")]
            if par.is_parallel() && n * n >= PAR_MIN_ENTRIES {
                use rayon::prelude::*;
                par.install(|| {
                    partial.par_chunks_mut(p).enumerate().for_each_init(
                        || vec![0.0; scratch_len],
                        |buf, (b, acc)| dot_block(b, buf, acc),
                    );
                });
                done = true;
            }
            if !done {
                let mut buf = vec![0.0; scratch_len];
                for (b, acc) in partial.chunks_exact_mut(p).enumerate() {
                    dot_block(b, &mut buf, acc);
                }
            }
            // Blocks summed in a fixed order: the result is independent of the thread count.
            out.iter_mut().for_each(|o| *o = 0.0);
            for acc in partial.chunks_exact(p) {
                out.iter_mut().zip(acc).for_each(|(o, a)| *o += a);
            }
        }
    }
}
