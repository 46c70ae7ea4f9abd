// Goal-inference particle filter (see src/belief/models/goal.rs), float32 particles,
// float64 weights sums and prefix sums. Compiled by NVRTC with `#define KG <goals>`.
// State (structure of arrays, n each): px, py, vx, vy, pr[KG * n] (goal probabilities), logw.
#define BS 256
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

struct Rng { unsigned long long s; };
__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// Uniform in (0, 1): 24 random bits + half an ulp.
__device__ __forceinline__ float unif(unsigned long long h) { return ((float)(h >> 40) + 0.5f) * (1.0f / 16777216.0f); }

struct Params {
    float dt, speed, a, sd, obs_var_inv, switch_keep, switch_jump, vel_param, gx[16], gy[16], gr[16];
    int mode;  // 0 constant speed (vel_param = 1/slow_radius), 1 heading (same), 2 linear (gain)
    double log_norm;  // -ln(2 pi sigma^2)
};

extern "C" __global__ void pf_init(float* st, float* logw, int n,
                                   float mx, float my, float sx, float sy, float svx, float svy,
                                   const float* __restrict__ prior, unsigned long long seed) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float *px = st, *py = st + n, *vx = st + 2 * (size_t)n, *vy = st + 3 * (size_t)n, *pr = st + 4 * (size_t)n;
    unsigned long long b = mix64(seed ^ mix64((unsigned long long)i));
    float u1 = unif(mix64(b + 1)), u2 = unif(mix64(b + 2)), u3 = unif(mix64(b + 3)), u4 = unif(mix64(b + 4));
    float r1 = sqrtf(-2.0f * logf(u1)), r2 = sqrtf(-2.0f * logf(u3));
    float s1, c1, s2, c2;
    sincospif(2.0f * u2, &s1, &c1);
    sincospif(2.0f * u4, &s2, &c2);
    px[i] = mx + sx * r1 * c1; py[i] = my + sy * r1 * s1;
    vx[i] = svx * r2 * c2;     vy[i] = svy * r2 * s2;
    for (int g = 0; g < KG; ++g) pr[(size_t)g * n + i] = prior[g];
    logw[i] = 0.0f;
}

__device__ void block_sum(double* red, double v, double* out) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int s = BS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = red[0];
    __syncthreads();
}

// One step: goal switching + sampling, propagation, Rao-Blackwellised goal update, observation
// log-likelihood; logw <- logw - shift + ll. Per block writes [max, S, S2, G_0..G_{KG-1}]
// with S = sum exp(l - max), S2 = sum exp(2(l - max)), G_g = sum exp(l - max) p(g).
extern "C" __global__ void pf_step(float* st, float* logw, int n,
                                   Params P, float zx, float zy, float shift, unsigned long long seed,
                                   double* __restrict__ part) {
    __shared__ double red[BS];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float *px = st, *py = st + n, *vx = st + 2 * (size_t)n, *vy = st + 3 * (size_t)n, *pr = st + 4 * (size_t)n;
    float l = -INFINITY;
    float q[KG];
    if (i < n) {
        unsigned long long b = mix64(seed ^ mix64((unsigned long long)i));
        float u = unif(mix64(b + 1)), u1 = unif(mix64(b + 2)), u2 = unif(mix64(b + 3));
        float r = sqrtf(-2.0f * logf(u1)), sn, cs;
        sincospif(2.0f * u2, &sn, &cs);
        float e1 = r * cs, e2 = r * sn;
        float x = px[i], y = py[i], vxi = vx[i], vyi = vy[i];
        // 1. switching, then sample a goal by cumulative probabilities.
        float c = 0.0f; int sel = 0;
#pragma unroll
        for (int g = 0; g < KG; ++g) {
            q[g] = fmaf(P.switch_keep, pr[(size_t)g * n + i], P.switch_jump);
            if (g < KG - 1) { c += q[g]; sel += (u >= c) ? 1 : 0; }
        }
        // 2. target velocities per goal.
        float tx[KG], ty[KG];
        float sp = sqrtf(vxi * vxi + vyi * vyi);
#pragma unroll
        for (int g = 0; g < KG; ++g) {
            float dx = P.gx[g] - x, dy = P.gy[g] - y;
            if (P.mode == 2) { tx[g] = P.vel_param * dx; ty[g] = P.vel_param * dy; }
            else {
                float d = sqrtf(dx * dx + dy * dy);
                float ramp = fminf(fmaxf(d - P.gr[g], 0.0f) * P.vel_param, 1.0f);
                float sc = (P.mode == 0 ? P.speed : sp) * ramp / fmaxf(d, 1e-9f);
                tx[g] = sc * dx; ty[g] = sc * dy;
            }
        }
        float sx = tx[0], sy = ty[0];
#pragma unroll
        for (int g = 1; g < KG; ++g) if (sel == g) { sx = tx[g]; sy = ty[g]; }
        // 3. move.
        float nvx = vxi + P.a * (sx - vxi) + P.sd * e1;
        float nvy = vyi + P.a * (sy - vyi) + P.sd * e2;
        x = fmaf(P.dt, nvx, x); y = fmaf(P.dt, nvy, y);
        px[i] = x; py[i] = y; vx[i] = nvx; vy[i] = nvy;
        // 4. Rao-Blackwellised goal probabilities.
        float cc = -0.5f / (P.sd * P.sd), lg[KG], lmax = -INFINITY;
#pragma unroll
        for (int g = 0; g < KG; ++g) {
            float dx = fmaf(P.a, sx - tx[g], P.sd * e1), dy = fmaf(P.a, sy - ty[g], P.sd * e2);
            lg[g] = cc * (dx * dx + dy * dy);
            lmax = fmaxf(lmax, lg[g]);
        }
        float tot = 0.0f;
#pragma unroll
        for (int g = 0; g < KG; ++g) { q[g] *= __expf(fmaxf(lg[g] - lmax, -87.0f)); tot += q[g]; }
        float inv = tot > 0.0f ? 1.0f / tot : 0.0f, add = tot > 0.0f ? 0.0f : 1.0f / KG;
#pragma unroll
        for (int g = 0; g < KG; ++g) { q[g] = fmaf(q[g], inv, add); pr[(size_t)g * n + i] = q[g]; }
        // 5. weight.
        float ddx = zx - x, ddy = zy - y;
        float ll = (float)P.log_norm - 0.5f * P.obs_var_inv * (ddx * ddx + ddy * ddy);
        l = logw[i] - shift + ll;
        if (l != l) l = -INFINITY;  // NaN counts as impossible
        logw[i] = l;
    }
    // block max
    red[threadIdx.x] = (double)l;
    __syncthreads();
    for (int s = BS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    double m = red[0];
    __syncthreads();
    const int W = 3 + KG;
    double* o = part + (size_t)blockIdx.x * W;
    double w = (i < n && m > -INFINITY) ? exp((double)l - m) : 0.0;
    if (threadIdx.x == 0) o[0] = m;
    block_sum(red, w, o + 1);
    block_sum(red, w * w, o + 2);
#pragma unroll
    for (int g = 0; g < KG; ++g) block_sum(red, i < n ? w * (double)q[g] : 0.0, o + 3 + g);
}

// One block of 1024 threads: combines the block partials into
// out = [M, S, S2, G_0/S .. G_{KG-1}/S] (S relative to the global max M).
extern "C" __global__ void pf_combine(const double* __restrict__ part, int nb, double* __restrict__ out) {
    __shared__ double red[1024];
    const int W = 3 + KG;
    double m = -INFINITY;
    for (int b = threadIdx.x; b < nb; b += blockDim.x) m = fmax(m, part[(size_t)b * W]);
    red[threadIdx.x] = m;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    double M = red[0];
    __syncthreads();
    for (int k = 1; k < W; ++k) {
        double a = 0.0;
        for (int b = threadIdx.x; b < nb; b += blockDim.x) {
            double mb = part[(size_t)b * W];
            if (mb > -INFINITY) {
                double f = exp(mb - M);
                a += part[(size_t)b * W + k] * (k == 2 ? f * f : f);
            }
        }
        red[threadIdx.x] = a;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) out[k] = red[0];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = M;
        for (int g = 0; g < KG; ++g) out[3 + g] = out[1] > 0.0 ? out[3 + g] / out[1] : 1.0 / KG;
    }
}

// Inclusive block scan (f64) of w_i = exp(logw_i - M); returns this thread's inclusive value
// and writes the block total to *tot. Identical code in both resampling passes, so the
// per-block totals and the scans agree bit for bit.
__device__ double block_scan(const float* __restrict__ logw, int n, double M, double* sh, double* tot) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    double w = i < n ? exp((double)logw[i] - M) : 0.0;
    sh[threadIdx.x] = w;
    __syncthreads();
    for (int off = 1; off < BS; off <<= 1) {
        double t = threadIdx.x >= off ? sh[threadIdx.x - off] : 0.0;
        __syncthreads();
        sh[threadIdx.x] += t;
        __syncthreads();
    }
    double v = sh[threadIdx.x];
    *tot = sh[BS - 1];
    __syncthreads();
    return v;
}

extern "C" __global__ void rs_block_sums(const float* __restrict__ logw, int n, double M, double* __restrict__ sums) {
    __shared__ double sh[BS];
    double tot;
    block_scan(logw, n, M, sh, &tot);
    if (threadIdx.x == 0) sums[blockIdx.x] = tot;
}

// One block of 1024 threads: exclusive scan of the nb block sums in f64, in order
// (each thread a contiguous range, then a scan of the thread totals). prefix[nb] = total.
extern "C" __global__ void rs_scan(const double* __restrict__ sums, int nb, double* __restrict__ prefix) {
    __shared__ double sh[1024];
    int per = (nb + blockDim.x - 1) / blockDim.x;
    int lo = threadIdx.x * per, hi = min(lo + per, nb);
    double a = 0.0;
    for (int b = lo; b < hi; ++b) a += sums[b];
    sh[threadIdx.x] = a;
    __syncthreads();
    if (threadIdx.x == 0) {
        double run = 0.0;
        for (int t = 0; t < blockDim.x; ++t) { double v = sh[t]; sh[t] = run; run += v; }
        prefix[nb] = run;
    }
    __syncthreads();
    double run = sh[threadIdx.x];
    for (int b = lo; b < hi; ++b) { prefix[b] = run; run += sums[b]; }
}

// Systematic resampling by scatter: particle i owns positions k with
// C_{i-1} <= (k + u) S / n < C_i, i.e. k in [ceil(C_{i-1} n / S - u), ceil(C_i n / S - u)).
extern "C" __global__ void rs_scatter(const float* __restrict__ logw, int n, double M, const double* __restrict__ prefix,
                                      int nb, double u, unsigned int* __restrict__ anc) {
    __shared__ double sh[BS];
    double tot;
    double incl = block_scan(logw, n, M, sh, &tot);
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double S = prefix[nb];
    // Cumulative weight before and through particle i: c0 of i is bitwise c1 of i - 1 (same
    // expression within a block; the block's first/last use the scanned block prefixes).
    double c0 = threadIdx.x == 0 ? prefix[blockIdx.x] : prefix[blockIdx.x] + sh[threadIdx.x - 1];
    double c1 = (threadIdx.x == BS - 1 || i == n - 1) ? prefix[blockIdx.x + 1] : prefix[blockIdx.x] + incl;
    double scale = (double)n / S;
    long long k0 = (long long)ceil(c0 * scale - u), k1 = (long long)ceil(c1 * scale - u);
    if (k0 < 0) k0 = 0;
    if (k1 > n) k1 = n;
    for (long long k = k0; k < k1; ++k) anc[k] = (unsigned int)i;
}

extern "C" __global__ void rs_gather(const float* __restrict__ src, float* __restrict__ dst, int n, int comps,
                                     const unsigned int* __restrict__ anc) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    unsigned int a = anc[k];
    for (int c = 0; c < comps; ++c) dst[(size_t)c * n + k] = src[(size_t)c * n + a];
}
