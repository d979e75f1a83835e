/* Batch norm in training mode over a channels-last bf16 tensor of few channels, with the ReLU (and the residual
   add) that follow it fused in (plasticity_nb/training/narrow_norm.py calls these through ctypes).

   ATen's channels-last batch norm vectorises over channels, and 8 bf16 channels fill a quarter of an AVX-512
   vector: on the quick model it took 2.6-3.4 ms where these kernels take 0.6-0.9 (benchmarks/RESULTS.md). Here the
   tensor is read as rows of P lanes (P = 16, or C when C is a multiple of 16): lane j holds channel j % C, so every
   loop runs over whole vectors. Single-threaded (a batch worker trains on one thread); lanes are summed in fp32
   over blocks of BLOCK rows, then in double; the variance is centred (a second pass), never E[x^2] - E[x]^2. */
#include <stdint.h>
#include <string.h>

#define BLOCK 256
#define MAX_LANES 64

static inline float bf(uint16_t v) { uint32_t u = (uint32_t)v << 16; float f; memcpy(&f, &u, 4); return f; }

static inline uint16_t to_bf(float f) {  /* round to nearest even, as torch does */
    uint32_t u; memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void per_channel(const double *lanes, long p, long c, double *out) {
    for (long k = 0; k < c; k++) out[k] = 0.0;
    for (long j = 0; j < p; j++) out[j % c] += lanes[j];
}

static void spread(const float *channels, long p, long c, float *lanes) {
    for (long j = 0; j < p; j++) lanes[j] = channels[j % c];
}

/* a bf16 above 0 (NaN is not, as in torch's threshold_backward) */
static inline int positive(uint16_t v) { return !(v & 0x8000u) && (v & 0x7fffu) && (v & 0x7fffu) <= 0x7f80u; }

#define ROWS(r0) long r1 = r0 + BLOCK < rows ? r0 + BLOCK : rows

static inline __attribute__((always_inline)) void stats_impl(
        const uint16_t *x, long rows, const long p, long c, double count, float *mean, float *var) {
    double lanes[MAX_LANES], total[MAX_LANES];
    float acc[MAX_LANES], m[MAX_LANES];
    for (long j = 0; j < p; j++) lanes[j] = 0.0;
    for (long r0 = 0; r0 < rows; r0 += BLOCK) {
        ROWS(r0);
        for (long j = 0; j < p; j++) acc[j] = 0.f;
        for (long r = r0; r < r1; r++)
            for (long j = 0; j < p; j++) acc[j] += bf(x[r * p + j]);
        for (long j = 0; j < p; j++) lanes[j] += acc[j];
    }
    per_channel(lanes, p, c, total);
    for (long k = 0; k < c; k++) mean[k] = (float)(total[k] / count);
    spread(mean, p, c, m);
    for (long j = 0; j < p; j++) lanes[j] = 0.0;
    for (long r0 = 0; r0 < rows; r0 += BLOCK) {  /* centred second pass: no cancellation */
        ROWS(r0);
        for (long j = 0; j < p; j++) acc[j] = 0.f;
        for (long r = r0; r < r1; r++)
            for (long j = 0; j < p; j++) { float d = bf(x[r * p + j]) - m[j]; acc[j] += d * d; }
        for (long j = 0; j < p; j++) lanes[j] += acc[j];
    }
    per_channel(lanes, p, c, total);
    for (long k = 0; k < c; k++) var[k] = (float)(total[k] / count);
}

/* y = x * scale + shift; relu: max(y, 0); residual (may be NULL): max(y + residual, 0) */
static inline __attribute__((always_inline)) void apply_impl(
        const uint16_t *x, const uint16_t *residual, long rows, const long p, long c, const float *scale,
        const float *shift, int relu, uint16_t *y) {
    float s[MAX_LANES], t[MAX_LANES];
    spread(scale, p, c, s); spread(shift, p, c, t);
    for (long r = 0; r < rows; r++) {
        const uint16_t *xr = x + r * p; uint16_t *yr = y + r * p;
        if (residual) {
            const uint16_t *rr = residual + r * p;
            /* torch rounds the batch norm's output to bf16 before adding: so do we */
            for (long j = 0; j < p; j++) {
                float v = bf(to_bf(bf(xr[j]) * s[j] + t[j])) + bf(rr[j]);
                yr[j] = to_bf(v > 0.f ? v : 0.f);
            }
        } else if (relu) {
            for (long j = 0; j < p; j++) { float v = bf(xr[j]) * s[j] + t[j]; yr[j] = to_bf(v > 0.f ? v : 0.f); }
        } else {
            for (long j = 0; j < p; j++) yr[j] = to_bf(bf(xr[j]) * s[j] + t[j]);
        }
    }
}

/* g = dy, masked where the fused ReLU's output y is 0 (y NULL: no ReLU), written to g_out when it is not NULL;
   sums of g and of g * (x - mean) per channel */
static inline __attribute__((always_inline)) void grad_sums_impl(
        const uint16_t *x, const uint16_t *dy, const uint16_t *y, long rows, const long p, long c,
        const float *mean, uint16_t *g_out, float *sum_g, float *sum_gxc) {
    double l1[MAX_LANES], l2[MAX_LANES], t1[MAX_LANES], t2[MAX_LANES];
    float a1[MAX_LANES], a2[MAX_LANES], m[MAX_LANES];
    spread(mean, p, c, m);
    for (long j = 0; j < p; j++) l1[j] = l2[j] = 0.0;
    for (long r0 = 0; r0 < rows; r0 += BLOCK) {
        ROWS(r0);
        for (long j = 0; j < p; j++) a1[j] = a2[j] = 0.f;
        for (long r = r0; r < r1; r++) {
            const uint16_t *xr = x + r * p, *gr = dy + r * p;
            if (y) {
                const uint16_t *yr = y + r * p;
                uint16_t gm[MAX_LANES];
                for (long j = 0; j < p; j++) gm[j] = positive(yr[j]) ? gr[j] : 0;
                if (g_out) memcpy(g_out + r * p, gm, p * sizeof(uint16_t));
                for (long j = 0; j < p; j++) { float g = bf(gm[j]); a1[j] += g; a2[j] += g * (bf(xr[j]) - m[j]); }
            } else {
                for (long j = 0; j < p; j++) { float g = bf(gr[j]); a1[j] += g; a2[j] += g * (bf(xr[j]) - m[j]); }
            }
        }
        for (long j = 0; j < p; j++) { l1[j] += a1[j]; l2[j] += a2[j]; }
    }
    per_channel(l1, p, c, t1); per_channel(l2, p, c, t2);
    for (long k = 0; k < c; k++) { sum_g[k] = (float)t1[k]; sum_gxc[k] = (float)t2[k]; }
}

/* dx = a * g + b * x + d, g = dy masked where y is 0 (y NULL: no mask) */
static inline __attribute__((always_inline)) void grad_input_impl(
        const uint16_t *x, const uint16_t *dy, const uint16_t *y, long rows, const long p, long c,
        const float *a, const float *b, const float *d, uint16_t *dx) {
    float s[MAX_LANES], t[MAX_LANES], u[MAX_LANES];
    spread(a, p, c, s); spread(b, p, c, t); spread(d, p, c, u);
    for (long r = 0; r < rows; r++) {
        const uint16_t *xr = x + r * p, *gr = dy + r * p; uint16_t *out = dx + r * p;
        if (y) {
            const uint16_t *yr = y + r * p;
            for (long j = 0; j < p; j++) {
                float g = positive(yr[j]) ? bf(gr[j]) : 0.f;
                out[j] = to_bf(s[j] * g + t[j] * bf(xr[j]) + u[j]);
            }
        } else {
            for (long j = 0; j < p; j++) out[j] = to_bf(s[j] * bf(gr[j]) + t[j] * bf(xr[j]) + u[j]);
        }
    }
}

/* Each entry point compiles its loop twice: for 16 lanes (fully unrolled, the quick model's narrow layers) and
   for any other lane count. */
#define LANES(call) do { if (p == 16) { const long P = 16; call; } else { const long P = p; call; } } while (0)

void nn_stats(const uint16_t *x, long rows, long p, long c, double count, float *mean, float *var) {
    LANES(stats_impl(x, rows, P, c, count, mean, var));
}
void nn_apply(const uint16_t *x, const uint16_t *residual, long rows, long p, long c, const float *scale,
              const float *shift, int relu, uint16_t *y) {
    LANES(apply_impl(x, residual, rows, P, c, scale, shift, relu, y));
}
void nn_grad_sums(const uint16_t *x, const uint16_t *dy, const uint16_t *y, long rows, long p, long c,
                  const float *mean, uint16_t *g_out, float *sum_g, float *sum_gxc) {
    LANES(grad_sums_impl(x, dy, y, rows, P, c, mean, g_out, sum_g, sum_gxc));
}
void nn_grad_input(const uint16_t *x, const uint16_t *dy, const uint16_t *y, long rows, long p, long c,
                   const float *a, const float *b, const float *d, uint16_t *dx) {
    LANES(grad_input_impl(x, dy, y, rows, P, c, a, b, d, dx));
}
