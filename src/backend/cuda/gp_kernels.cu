// Exact-GP kernels (float64), compiled by NVRTC with `#define D <input dim>` prepended.
// Matrices are column-major (cuBLAS/cuSOLVER layout); inputs x are row-major (n, D).

extern "C" __device__ double sqdist_scaled(const double* __restrict__ a, const double* __restrict__ b,
                                           const double* __restrict__ inv_ls) {
    double r2 = 0.0;
#pragma unroll
    for (int c = 0; c < D; ++c) {
        double t = (a[c] - b[c]) * inv_ls[c];
        r2 = fma(t, t, r2);
    }
    return r2;
}

// Lower triangle (i >= j) of K(x, x) + noise * I, column-major with leading dimension n.
extern "C" __global__ void rbf_gram_lower(const double* __restrict__ x, int n, const double* __restrict__ inv_ls,
                                         double s2, double noise, double* __restrict__ k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= n || j >= n || i < j) return;
    double v = s2 * exp(-0.5 * sqdist_scaled(x + (size_t)i * D, x + (size_t)j * D, inv_ls));
    if (i == j) v += noise;
    k[(size_t)j * n + i] = v;
}

// K(x, xs) for test points xs (m, D): column-major (n, m), leading dimension n.
extern "C" __global__ void rbf_cross(const double* __restrict__ x, int n, const double* __restrict__ xs, int m,
                                     const double* __restrict__ inv_ls, double s2, double* __restrict__ out) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int j = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= n || j >= m) return;
    out[(size_t)j * n + i] = s2 * exp(-0.5 * sqdist_scaled(x + (size_t)i * D, xs + (size_t)j * D, inv_ls));
}

__device__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// B = [y, z_1 .. z_m] (n, 1 + m) column-major: copies y and draws Rademacher probes.
extern "C" __global__ void fill_rhs(const double* __restrict__ y, int n, int m, unsigned long long seed,
                                    double* __restrict__ b) {
    size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)n * (1 + m);
    if (t >= total) return;
    if (t < (size_t)n) { b[t] = y[t]; return; }
    unsigned long long h = splitmix64(seed ^ splitmix64((unsigned long long)t));
    b[t] = (h >> 63) ? 1.0 : -1.0;
}

// One block: out[0] = y' alpha, out[1] = sum log L_ii (L in k, column-major).
extern "C" __global__ void lml_terms(const double* __restrict__ y, const double* __restrict__ alpha,
                                     const double* __restrict__ l, int n, double* __restrict__ out) {
    __shared__ double s0[1024], s1[1024];
    double a = 0.0, b = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        a = fma(y[i], alpha[i], a);
        b += log(l[(size_t)i * n + i]);
    }
    s0[threadIdx.x] = a; s1[threadIdx.x] = b;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) { s0[threadIdx.x] += s0[threadIdx.x + s]; s1[threadIdx.x] += s1[threadIdx.x + s]; }
        __syncthreads();
    }
    if (threadIdx.x == 0) { out[0] = s0[0]; out[1] = s1[0]; }
}

// Gradient of the LML w.r.t. [ln s2, ln l_1 .. ln l_D, ln noise]:
//   g = 0.5 * sum_ij W_ij dK_ij,   W = alpha alpha' - T,
// T = K^-1 (exact: `kinv`, lower triangle, column-major) or the symmetrised Hutchinson estimate
// (1/m) sum_p (s_p z_p' + z_p s_p')/2 with s_p = K^-1 z_p (columns 1..m of `sol`, probes in `z`).
// Pairs i > j count twice. Each block reduces its partial sums and adds them to `grad` (D + 2).
#define MAXP 16
extern "C" __global__ void rbf_lml_grad(const double* __restrict__ x, int n, const double* __restrict__ inv_ls,
                                        double s2, double noise, const double* __restrict__ sol,
                                        const double* __restrict__ z, int m, const double* __restrict__ kinv,
                                        double* __restrict__ grad) {
    const int P = D + 2;
    // The block's 32 columns j: alpha_j, x_j, and the probe pairs (s_pj, z_pj) in shared memory.
    __shared__ double sa[32], sx[32][D], ss[MAXP][32], sz[MAXP][32];
    int j0 = blockIdx.y * 32;
    for (int t = threadIdx.x; t < 32; t += blockDim.x) {
        int j = j0 + t;
        bool ok = j < n;
        sa[t] = ok ? sol[j] : 0.0;
#pragma unroll
        for (int c = 0; c < D; ++c) sx[t][c] = ok ? x[(size_t)j * D + c] : 0.0;
        for (int p = 0; p < MAXP; ++p) {
            ss[p][t] = (ok && p < m) ? sol[(size_t)(p + 1) * n + j] : 0.0;
            sz[p][t] = (ok && p < m) ? z[(size_t)(p + 1) * n + j] : 0.0;
        }
    }
    __syncthreads();
    double acc[P];
#pragma unroll
    for (int p = 0; p < P; ++p) acc[p] = 0.0;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && j0 <= i) {
        double xi[D];
#pragma unroll
        for (int c = 0; c < D; ++c) xi[c] = x[(size_t)i * D + c];
        double ai = sol[i];
        double si[MAXP], zi[MAXP];
#pragma unroll
        for (int p = 0; p < MAXP; ++p) {
            si[p] = p < m ? sol[(size_t)(p + 1) * n + i] : 0.0;
            zi[p] = p < m ? z[(size_t)(p + 1) * n + i] : 0.0;
        }
        double inv_m = m > 0 ? 0.5 / m : 0.0;
        int jend = min(32, i + 1 - j0);
        for (int jj = 0; jj < jend; ++jj) {
            int j = j0 + jj;
            double w;
            if (kinv) {
                w = ai * sa[jj] - kinv[(size_t)j * n + i];
            } else {
                double t = 0.0;
#pragma unroll
                for (int p = 0; p < MAXP; ++p) {
                    t = fma(si[p], sz[p][jj], t);
                    t = fma(ss[p][jj], zi[p], t);
                }
                w = ai * sa[jj] - inv_m * t;
            }
            double mult = (i == j) ? 0.5 : 1.0;  // 0.5 * (2 for off-diagonal pairs, 1 on it)
            double r2 = 0.0;
            double dd[D];
#pragma unroll
            for (int c = 0; c < D; ++c) {
                double t = (xi[c] - sx[jj][c]) * inv_ls[c];
                dd[c] = t * t;
                r2 += dd[c];
            }
            double kw = mult * w * s2 * exp(-0.5 * r2);
            acc[0] += kw;
#pragma unroll
            for (int c = 0; c < D; ++c) acc[1 + c] = fma(kw, dd[c], acc[1 + c]);
            if (i == j) acc[D + 1] += mult * w * noise;
        }
    }
    // Block reduction (blockDim.x = 128).
    __shared__ double red[128];
    for (int p = 0; p < P; ++p) {
        red[threadIdx.x] = acc[p];
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0 && red[0] != 0.0) atomicAdd(grad + p, red[0]);
        __syncthreads();
    }
}

// var_j = prior - sum_i V_ij^2 (V column-major (n, m)); one block per column.
extern "C" __global__ void pred_var(const double* __restrict__ v, int n, int m, double prior,
                                    double* __restrict__ var) {
    __shared__ double red[256];
    int j = blockIdx.x;
    if (j >= m) return;
    const double* col = v + (size_t)j * n;
    double a = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) a = fma(col[i], col[i], a);
    red[threadIdx.x] = a;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) var[j] = prior - red[0];
}
