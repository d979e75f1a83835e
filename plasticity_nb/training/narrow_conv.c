/* 3x3, stride 1, pad 1 convolutions of 8 input and 8 output channels over a channels-last bf16 tensor
   (plasticity_nb/training/narrow_conv.py calls these through ctypes).

   oneDNN blocks bf16 convolutions by 16 output channels, so an 8-channel layer fills half of each dot product.
   Here the 16 lanes of an AVX-512 vector are 16 consecutive pixels of one row, and each lane's bf16 pair is the
   reduction's pair: forward and backward-data reduce over input-channel pairs (a row is packed into planes of
   channel pairs, [ci/2][padded width]), backward-weights over pairs of images (planes [channel][padded image]
   of two images' values). Products are summed in fp32 (vdpbf16ps), outputs rounded to bf16 to nearest even as
   oneDNN stores them. Single-threaded: a batch worker trains on one thread. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef __AVX512BF16__
#error "narrow_conv.c needs AVX512-BF16 (-march=native on a CPU with avx512_bf16)"
#endif

#define C 8          /* channels in and out */
#define PAIRS 4      /* channel pairs */
#define TAPS 9
#define BLOCK 16     /* pixels per vector */

static inline long padded_width(long w) { return (w + BLOCK - 1) / BLOCK * BLOCK + BLOCK; }

static inline __m512 dot(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

/* 16 pixels' channel-pair dwords ([pixel][4], four vectors of four pixels) as four planes of 16 pixels */
static inline void pixels_to_planes(const __m512i in[4], __m512i out[4]) {
    /* stage 1: pixels 0-7 and 8-15 each as [pair 0-1][8 pixels] and [pair 2-3][8 pixels] */
    const __m512i lo = _mm512_set_epi32(29, 25, 21, 17, 13, 9, 5, 1, 28, 24, 20, 16, 12, 8, 4, 0);
    const __m512i hi = _mm512_set_epi32(31, 27, 23, 19, 15, 11, 7, 3, 30, 26, 22, 18, 14, 10, 6, 2);
    __m512i a = _mm512_permutex2var_epi32(in[0], lo, in[1]), b = _mm512_permutex2var_epi32(in[0], hi, in[1]);
    __m512i c = _mm512_permutex2var_epi32(in[2], lo, in[3]), d = _mm512_permutex2var_epi32(in[2], hi, in[3]);
    /* stage 2: join the halves of one pair */
    const __m512i first = _mm512_set_epi32(23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i second = _mm512_set_epi32(31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8);
    out[0] = _mm512_permutex2var_epi32(a, first, c);
    out[1] = _mm512_permutex2var_epi32(a, second, c);
    out[2] = _mm512_permutex2var_epi32(b, first, d);
    out[3] = _mm512_permutex2var_epi32(b, second, d);
}

/* Loads `n` (< 16 at a row's end) pixels of 8 bf16 channels as four vectors, zeros past them. */
static inline void load_pixels(const uint16_t *row, long n, __m512i v[4]) {
    for (int k = 0; k < 4; k++) {
        long left = n - 4 * k;
        __mmask16 m = left >= 4 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << (4 * left)) - 1);
        v[k] = _mm512_maskz_loadu_epi32(m, row + 32 * k);
    }
}

/* One image [h][w][8] as channel-pair planes [h + 2][4][wp] dwords, zero-padded around. */
static void pack_pairs(const uint16_t *image, long h, long w, long wp, uint32_t *planes) {
    memset(planes, 0, sizeof(uint32_t) * (h + 2) * PAIRS * wp);
    for (long y = 0; y < h; y++) {
        uint32_t *row = planes + (y + 1) * PAIRS * wp;
        for (long x0 = 0; x0 < w; x0 += BLOCK) {
            __m512i in[4], out[4];
            load_pixels(image + (y * w + x0) * C, w - x0, in);
            pixels_to_planes(in, out);
            for (int p = 0; p < PAIRS; p++) _mm512_storeu_si512(row + p * wp + 1 + x0, out[p]);
        }
    }
}

/* The word permutations of store_pixels: [pixel][4 channels] for pixels 0-7 (lo) and 8-15 (hi), word 4p + o from
   channel o's vector, pixel p; then [pixel][8 channels] for pixels 4k..4k+3, channels 0-3 from the first table,
   4-7 from the second. */
static uint16_t lo_index[32], hi_index[32], join_index[4][32];

__attribute__((constructor)) static void fill_indices(void) {
    for (int p = 0; p < 8; p++)
        for (int o = 0; o < 4; o++) {
            lo_index[4 * p + o] = (uint16_t)((o >> 1) * 32 + (o & 1) * 16 + p);
            hi_index[4 * p + o] = (uint16_t)((o >> 1) * 32 + (o & 1) * 16 + p + 8);
        }
    for (int k = 0; k < 4; k++)
        for (int p = 0; p < 4; p++)
            for (int o = 0; o < 8; o++)
                join_index[k][8 * p + o] = (uint16_t)((o >> 2) * 32 + ((k & 1) * 4 + p) * 4 + (o & 3));
}

/* Eight output channels' fp32 sums over 16 pixels as 16 pixels' 8 bf16 channels (rounded to nearest even),
   stored for the first `n` pixels. */
static inline void store_pixels(const __m512 acc[C], long n, uint16_t *out) {
    __m512i c01 = (__m512i)_mm512_cvtne2ps_pbh(acc[1], acc[0]), c23 = (__m512i)_mm512_cvtne2ps_pbh(acc[3], acc[2]);
    __m512i c45 = (__m512i)_mm512_cvtne2ps_pbh(acc[5], acc[4]), c67 = (__m512i)_mm512_cvtne2ps_pbh(acc[7], acc[6]);
    __m512i lo = _mm512_loadu_si512(lo_index), hi = _mm512_loadu_si512(hi_index);
    __m512i t_lo = _mm512_permutex2var_epi16(c01, lo, c23), t_hi = _mm512_permutex2var_epi16(c01, hi, c23);
    __m512i u_lo = _mm512_permutex2var_epi16(c45, lo, c67), u_hi = _mm512_permutex2var_epi16(c45, hi, c67);
    for (int k = 0; k < 4; k++) {
        __m512i t = k < 2 ? t_lo : t_hi, u = k < 2 ? u_lo : u_hi;
        __m512i v = _mm512_permutex2var_epi16(t, _mm512_loadu_si512(join_index[k]), u);
        long left = n - 4 * k;
        __mmask16 m = left >= 4 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << (4 * left)) - 1);
        _mm512_mask_storeu_epi32(out + 32 * k, m, v);
    }
}

/* The sums of `units` (1 or 2) 16-pixel blocks, unit u at row y[u], first pixel x[u], from the bias; weights
   [tap][pair][o] as bf16 pairs, broadcast from memory. */
static inline __attribute__((always_inline)) void conv_units(
        const uint32_t *planes, long wp, const uint32_t *weights, const float bias[C], const long y[2],
        const long x[2], int units, __m512 acc[2][C]) {
    for (int u = 0; u < 2; u++)
        for (int o = 0; o < C; o++) acc[u][o] = _mm512_set1_ps(bias[o]);
    for (int ky = 0; ky < 3; ky++)
        for (int p = 0; p < PAIRS; p++)
            for (int kx = 0; kx < 3; kx++) {
                const uint32_t *wt = weights + ((ky * 3 + kx) * PAIRS + p) * C;
                __m512i v0 = _mm512_loadu_si512(planes + ((y[0] + ky) * PAIRS + p) * wp + x[0] + kx);
                __m512i v1 = _mm512_loadu_si512(planes + ((y[1] + ky) * PAIRS + p) * wp + x[1] + kx);
                for (int o = 0; o < C; o++) {
                    __m512i b = _mm512_set1_epi32((int)wt[o]);
                    acc[0][o] = dot(acc[0][o], v0, b);
                    if (units == 2) acc[1][o] = dot(acc[1][o], v1, b);
                }
            }
}

static void conv_image(const uint32_t *planes, long h, long w, long wp, const uint32_t *weights,
                       const float bias[C], uint16_t *out) {
    long blocks = (w + BLOCK - 1) / BLOCK, units = h * blocks;
    for (long u = 0; u < units; u += 2) {
        long y[2] = {u / blocks, (u + 1) / blocks}, x[2] = {u % blocks * BLOCK, (u + 1) % blocks * BLOCK};
        __m512 acc[2][C];
        if (u + 1 < units) {
            conv_units(planes, wp, weights, bias, y, x, 2, acc);
        } else {
            y[1] = y[0], x[1] = x[0];
            conv_units(planes, wp, weights, bias, y, x, 1, acc);
        }
        for (int k = 0; k < 2 && u + k < units; k++)
            store_pixels(acc[k], w - x[k], out + (y[k] * w + x[k]) * C);
    }
}

/* out[n] = conv(in[n], weights) + bias: forward with the weights as [ky][kx][ci pair][co][2], or backward-data
   with them transposed and flipped (bias NULL: none). Returns nonzero where memory ran out. */
int nc_conv(const uint16_t *in, long n, long h, long w, const uint16_t *weights, const float *bias,
            uint16_t *out) {
    static const float no_bias[C];
    long wp = padded_width(w);
    uint32_t *planes = aligned_alloc(64, sizeof(uint32_t) * ((h + 2) * PAIRS * wp + BLOCK));
    if (!planes) return 1;
    for (long i = 0; i < n; i++) {
        pack_pairs(in + i * h * w * C, h, w, wp, planes);
        conv_image(planes, h, w, wp, (const uint32_t *)weights, bias ? bias : no_bias, out + i * h * w * C);
    }
    free(planes);
    return 0;
}

/* Two images [h][w][8] (b may be NULL: zeros) as planes [channel][h + 2*pad][wp] of dwords (a's value, b's),
   `pad` rows of zeros above and below and a zero column on the left. */
static void pack_image_pairs(const uint16_t *a, const uint16_t *b, long h, long w, long wp, long pad,
                             uint32_t *planes) {
    long rows = h + 2 * pad;
    memset(planes, 0, sizeof(uint32_t) * C * rows * wp);
    for (long y = 0; y < h; y++)
        for (long x0 = 0; x0 < w; x0 += BLOCK) {
            __m512i va[4], vb[4], lo[4], hi[4], out_lo[4], out_hi[4];
            load_pixels(a + (y * w + x0) * C, w - x0, va);
            if (b) load_pixels(b + (y * w + x0) * C, w - x0, vb);
            else for (int k = 0; k < 4; k++) vb[k] = _mm512_setzero_si512();
            /* a 128-bit lane is one pixel's 8 channels: interleave a's and b's words, channels 0-3 and 4-7 */
            for (int k = 0; k < 4; k++) {
                lo[k] = _mm512_unpacklo_epi16(va[k], vb[k]);
                hi[k] = _mm512_unpackhi_epi16(va[k], vb[k]);
            }
            pixels_to_planes(lo, out_lo);
            pixels_to_planes(hi, out_hi);
            for (int c = 0; c < 4; c++) {
                _mm512_storeu_si512(planes + (c * rows + y + pad) * wp + pad + x0, out_lo[c]);
                _mm512_storeu_si512(planes + ((c + 4) * rows + y + pad) * wp + pad + x0, out_hi[c]);
            }
        }
}

/* Adds to acc[tap][o][ci][16 lanes] the products of an image pair's gradient planes (unpadded) and input
   planes (padded by one), for output channels o0..o0+3 and input channels c0..c0+3. */
static void weight_sums(const uint32_t *dy, const uint32_t *x, long h, long w, long wp, int tap, int o0, int c0,
                        float *acc) {
    int ky = tap / 3, kx = tap % 3;
    long rows = h + 2;
    __m512 s[4][4];
    for (int o = 0; o < 4; o++)
        for (int c = 0; c < 4; c++) s[o][c] = _mm512_loadu_ps(acc + (((long)tap * C + o0 + o) * C + c0 + c) * 16);
    for (long y = 0; y < h; y++)
        for (long x0 = 0; x0 < w; x0 += BLOCK) {
            __m512i g[4], v[4];
            for (int o = 0; o < 4; o++) g[o] = _mm512_loadu_si512(dy + ((o0 + o) * h + y) * wp + x0);
            for (int c = 0; c < 4; c++) v[c] = _mm512_loadu_si512(x + ((c0 + c) * rows + y + ky) * wp + x0 + kx);
            for (int o = 0; o < 4; o++)
                for (int c = 0; c < 4; c++) s[o][c] = dot(s[o][c], g[o], v[c]);
        }
    for (int o = 0; o < 4; o++)
        for (int c = 0; c < 4; c++) _mm512_storeu_ps(acc + (((long)tap * C + o0 + o) * C + c0 + c) * 16, s[o][c]);
}

/* grad_weight[o][ci][ky][kx] (fp32) = sum over images and pixels of dy[o] times the input at the tap. Lanes
   past a row's end hold zeros in dy's planes, so they add nothing. Returns nonzero where memory ran out. */
int nc_weight_grad(const uint16_t *x, const uint16_t *dy, long n, long h, long w, float *grad_weight) {
    long wp = padded_width(w), image = h * w * C;
    uint32_t *xp = aligned_alloc(64, sizeof(uint32_t) * (C * (h + 2) * wp + BLOCK));
    uint32_t *gp = aligned_alloc(64, sizeof(uint32_t) * (C * h * wp + BLOCK));
    float *acc = calloc(TAPS * C * C * 16, sizeof(float));
    if (!xp || !gp || !acc) { free(xp); free(gp); free(acc); return 1; }
    for (long i = 0; i < n; i += 2) {
        int pair = i + 1 < n;
        pack_image_pairs(x + i * image, pair ? x + (i + 1) * image : NULL, h, w, wp, 1, xp);
        pack_image_pairs(dy + i * image, pair ? dy + (i + 1) * image : NULL, h, w, wp, 0, gp);
        for (int o0 = 0; o0 < C; o0 += 4)  /* the taps innermost: nine passes over the same planes, in L1 */
            for (int c0 = 0; c0 < C; c0 += 4)
                for (int tap = 0; tap < TAPS; tap++) weight_sums(gp, xp, h, w, wp, tap, o0, c0, acc);
    }
    for (int o = 0; o < C; o++)
        for (int c = 0; c < C; c++)
            for (int tap = 0; tap < TAPS; tap++)
                grad_weight[(o * C + c) * TAPS + tap] = _mm512_reduce_add_ps(
                    _mm512_loadu_ps(acc + (((long)tap * C + o) * C + c) * 16));
    free(xp); free(gp); free(acc);
    return 0;
}
