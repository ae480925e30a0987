/* 3x3 stride-1 pad-1 convolution by Winograd F(4x4, 3x3) (Lavin & Gray 2016):
 * each 4x4 output tile costs 36 multiplies per (in, out) channel pair instead
 * of 144, so the arithmetic is a quarter of im2col + sgemm's.
 *
 * Tiles are handled 16 at a time along a row (one 16-float vector holds the
 * same transform coefficient of 16 neighbouring tiles), two such groups make
 * a block of 32 tiles. Per block, each thread: transforms the input patches
 * (V = B^T d B) into a small buffer, multiplies the 36 (OC x C) by (C x 32)
 * matrices with a register-blocked kernel (M = U V), and transforms back
 * (Y = A^T M A) straight into the output. The buffers stay in L2, so the
 * activations are read and written once. Blocks are spread over OpenMP
 * threads; no BLAS call is made inside.
 *
 * Weight transform U = G g G^T is recomputed per call (weights change every
 * training step; it costs OC*C*~200 flops). `flip` convolves with the
 * transposed, 180-degree rotated weights, which is the input gradient of the
 * same layer (used by backward). */
/* Let a*b+c become one FMA (ISO C mode turns contraction off). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
/* 64-byte vectors passed between static functions: without AVX-512 the
 * compiler notes an ABI difference that cannot matter here. */
#pragma GCC diagnostic ignored "-Wpsabi"
#include <omp.h>
#include <string.h>

#include "anomalyd/nn_layers.h"

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

#define TB 32          /* tiles per block: two vectors */
#define RB 8           /* output channels per register block */

/* __builtin_shufflevector: constant lane indices, understood by GCC >= 12
 * and clang (the fuzz build). PHASE_OF picks lanes j, j+4, ... of a:b. */
#define PHASE_OF(a, b, j) \
    __builtin_shufflevector(a, b, j, j + 4, j + 8, j + 12, 16 + j, 20 + j, 24 + j, 28 + j, 0, 0, 0, 0, 0, 0, 0, 0)
#define LOW_HALVES(a, b) \
    __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
#define NEXT_LANE(a, b) \
    __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)

static inline __attribute__((always_inline)) v16 ld(const float *p) { return *(const v16u *)p; }
static inline __attribute__((always_inline)) void st(float *p, v16 v) { *(v16u *)p = v; }

typedef struct wino_dims {
    int n, c, h, w, oc;
    int tiles_y, tiles_x, groups_x, groups;   /* groups of 16 tiles along x */
} wino_dims;

static void dims_of(wino_dims *d, const ad_conv_shape *s, int flip)
{
    d->n = s->n;
    d->h = s->h;
    d->w = s->w;
    d->c = flip ? s->oc : s->c;
    d->oc = flip ? s->c : s->oc;
    d->tiles_y = (s->h + 3) / 4;
    d->tiles_x = (s->w + 3) / 4;
    d->groups_x = (d->tiles_x + 15) / 16;
    d->groups = s->n * d->tiles_y * d->groups_x;
}

int ad_conv2d_winograd_ok(const ad_conv_shape *s)
{
    return s->k == 3 && s->stride == 1 && s->pad == 1;
}

static size_t per_thread_floats(int c, int oc) { return (size_t)36 * TB * (c + ((oc + 7) & ~7)) + 68 * 6 + 4 * 64 + 64; }

size_t ad_conv2d_winograd_workspace(const ad_conv_shape *s, int threads)
{
    int c = s->c > s->oc ? s->c : s->oc;   /* forward and flipped use */
    if (threads < 1) threads = 1;
    return (size_t)36 * ((s->c + 7) & ~7) * ((s->oc + 7) & ~7) + 64 + (size_t)threads * ((per_thread_floats(c, c) + 15) & ~(size_t)15);
}

/* ---- weight transform: U[xi][o][c] = (G g G^T)[xi] ---- */
/* Called inside a parallel region (orphaned omp for); U's padding rows are
 * zeroed by the caller. */
static void transform_weights(float *U, const float *w, const wino_dims *d, const ad_conv_shape *s, int flip)
{
    const int C = d->c, OC = d->oc, ocp = (OC + 7) & ~7;
#pragma omp for schedule(static)
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            float g[3][3], t[6][3], u[6][6];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = flip ? w[(((size_t)c * s->c + o) * 3 + 2 - ky) * 3 + 2 - kx]
                                     : w[(((size_t)o * s->c + c) * 3 + ky) * 3 + kx];
            for (int j = 0; j < 3; j++) {
                float g0 = g[0][j], g1 = g[1][j], g2 = g[2][j];
                t[0][j] = g0 * 0.25f;
                t[1][j] = -(g0 + g1 + g2) / 6.0f;
                t[2][j] = -(g0 - g1 + g2) / 6.0f;
                t[3][j] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
                t[4][j] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
                t[5][j] = g2;
            }
            for (int i = 0; i < 6; i++) {
                float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                u[i][0] = g0 * 0.25f;
                u[i][1] = -(g0 + g1 + g2) / 6.0f;
                u[i][2] = -(g0 - g1 + g2) / 6.0f;
                u[i][3] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
                u[i][4] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
                u[i][5] = g2;
            }
            for (int xi = 0; xi < 36; xi++)
                U[((size_t)xi * ocp + (o & ~7)) * C + (size_t)c * 8 + (o & 7)] = u[xi / 6][xi % 6];
        }
}

/* ---- input transform ---- */

/* B^T applied to 6 vectors */
#define BT6(d0, d1, d2, d3, d4, d5, r)                        \
    do {                                                      \
        r[0] = 4.0f * d0 - 5.0f * d2 + d4;                    \
        r[1] = -4.0f * (d1 + d2) + d3 + d4;                   \
        r[2] = 4.0f * (d1 - d2) - d3 + d4;                    \
        r[3] = 2.0f * (d3 - d1) - d2 + d4;                    \
        r[4] = 2.0f * (d1 - d3) - d2 + d4;                    \
        r[5] = 4.0f * d1 - 5.0f * d3 + d5;                    \
    } while (0)

/* P[j][t] = r[4t + j] for j < 6, t < 16; r has 66 readable floats. */
static inline __attribute__((always_inline)) void deinterleave(v16 P[6], const float *r)
{
    v16 a0 = ld(r), a1 = ld(r + 16), a2 = ld(r + 32), a3 = ld(r + 48);
#define PHASE(j)                                                                               \
    do {                                                                                       \
        v16 lo = PHASE_OF(a0, a1, j), hi = PHASE_OF(a2, a3, j);                                \
        P[j] = LOW_HALVES(lo, hi);                                                             \
    } while (0)
    PHASE(0);
    PHASE(1);
    PHASE(2);
    PHASE(3);
#undef PHASE
    /* phases 4 and 5 are phases 0 and 1 one tile later */
    v16 tail4 = {r[64]}, tail5 = {r[65]};
    P[4] = NEXT_LANE(P[0], tail4);
    P[5] = NEXT_LANE(P[1], tail5);
}

/* V[xi][c][col0 + t] (rows of ldv floats) for the 16 tiles of group g, all
 * channels. */
static void input_group(float *V, size_t ldv, int col0, const float *in, const wino_dims *d, int g, float *rowbuf)
{
    const int per_img = d->tiles_y * d->groups_x;
    const int n = g / per_img, rem = g % per_img, ty = rem / d->groups_x, gx = rem % d->groups_x;
    const int x0 = 64 * gx - 1, y0 = 4 * ty - 1;
    const int interior_x = x0 >= 0 && x0 + 66 <= d->w;
    const size_t hw = (size_t)d->h * d->w;
    for (int c = 0; c < d->c; c++) {
        const float *plane = in + ((size_t)n * d->c + c) * hw;
        v16 t[6][6];   /* t[k][j]: column transform of patch column j */
        v16 D[6][6];
        for (int i = 0; i < 6; i++) {
            int y = y0 + i;
            if (y < 0 || y >= d->h) {
                for (int j = 0; j < 6; j++) D[i][j] = (v16){0};
                continue;
            }
            const float *r = plane + (size_t)y * d->w + x0;
            if (!interior_x) {
                float *b = rowbuf;
                for (int k = 0; k < 68; k++) {
                    int x = x0 + k;
                    b[k] = (x >= 0 && x < d->w) ? plane[(size_t)y * d->w + x] : 0.0f;
                }
                r = b;
            }
            deinterleave(D[i], r);
        }
        for (int j = 0; j < 6; j++) {
            v16 col[6];
            BT6(D[0][j], D[1][j], D[2][j], D[3][j], D[4][j], D[5][j], col);
            for (int k = 0; k < 6; k++) t[k][j] = col[k];
        }
        for (int k = 0; k < 6; k++) {
            v16 row[6];
            BT6(t[k][0], t[k][1], t[k][2], t[k][3], t[k][4], t[k][5], row);
            for (int l = 0; l < 6; l++) st(V + ((size_t)(k * 6 + l) * d->c + c) * ldv + col0, row[l]);
        }
    }
}

/* ---- batched product M[xi] = U[xi] (OC x C) * V[xi] (C x TB) ----
 * U is stored as [xi][OC/8][C][8] (OC padded to a multiple of 8 with zero
 * rows) so the 8 broadcasts of one step come from one cache line; M has the
 * padded row count too. 16 accumulators (8 rows x 2 vectors) stay in
 * registers. */
#ifdef __AVX512F__
#include <immintrin.h>
static void multiply_rows8(float *m, const float *u, const float *v, int C)
{
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
           a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00, a61 = a00, a70 = a00, a71 = a00;
    for (int c = 0; c < C; c++, u += 8, v += TB) {
        __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16), s;
#define ROW(r, x0, x1)                                                       \
        s = _mm512_set1_ps(u[r]);                                            \
        x0 = _mm512_fmadd_ps(s, v0, x0);                                     \
        x1 = _mm512_fmadd_ps(s, v1, x1);
        ROW(0, a00, a01) ROW(1, a10, a11) ROW(2, a20, a21) ROW(3, a30, a31)
        ROW(4, a40, a41) ROW(5, a50, a51) ROW(6, a60, a61) ROW(7, a70, a71)
#undef ROW
    }
#define STORE(r, x0, x1) _mm512_storeu_ps(m + (r) * TB, x0); _mm512_storeu_ps(m + (r) * TB + 16, x1);
    STORE(0, a00, a01) STORE(1, a10, a11) STORE(2, a20, a21) STORE(3, a30, a31)
    STORE(4, a40, a41) STORE(5, a50, a51) STORE(6, a60, a61) STORE(7, a70, a71)
#undef STORE
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* AVX2 has 16 vector registers: the whole 8 x 32 block (32 accumulators of
 * 8 floats) would spill on every step, so it is done as four 4 x 16
 * quarters of 8 accumulators each, v re-read from L1 for each quarter. */
static void multiply_rows8(float *m, const float *u, const float *v, int C)
{
    for (int r0 = 0; r0 < RB; r0 += 4)
        for (int h = 0; h < TB; h += 16) {
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
                   a30 = a00, a31 = a00;
            const float *uu = u + r0, *vv = v + h;
            for (int c = 0; c < C; c++, uu += RB, vv += TB) {
                __m256 v0 = _mm256_loadu_ps(vv), v1 = _mm256_loadu_ps(vv + 8), s;
#define ROW(r, x0, x1)                                                       \
                s = _mm256_broadcast_ss(uu + (r));                           \
                x0 = _mm256_fmadd_ps(s, v0, x0);                             \
                x1 = _mm256_fmadd_ps(s, v1, x1);
                ROW(0, a00, a01) ROW(1, a10, a11) ROW(2, a20, a21) ROW(3, a30, a31)
#undef ROW
            }
            float *mm = m + (size_t)r0 * TB + h;
#define STORE(r, x0, x1) _mm256_storeu_ps(mm + (r) * TB, x0); _mm256_storeu_ps(mm + (r) * TB + 8, x1);
            STORE(0, a00, a01) STORE(1, a10, a11) STORE(2, a20, a21) STORE(3, a30, a31)
#undef STORE
        }
}
#else
static void multiply_rows8(float *m, const float *u, const float *v, int C)
{
    v16 acc[RB][2];
    for (int r = 0; r < RB; r++) acc[r][0] = acc[r][1] = (v16){0};
    for (int c = 0; c < C; c++, u += 8, v += TB) {
        v16 v0 = ld(v), v1 = ld(v + 16);
        for (int r = 0; r < RB; r++) {
            acc[r][0] += u[r] * v0;
            acc[r][1] += u[r] * v1;
        }
    }
    for (int r = 0; r < RB; r++) {
        st(m + (size_t)r * TB, acc[r][0]);
        st(m + (size_t)r * TB + 16, acc[r][1]);
    }
}
#endif

static int pad8(int x) { return (x + 7) & ~7; }

static void multiply(float *M, const float *U, const float *V, int C, int OC)
{
    const int ocp = pad8(OC);
    for (int xi = 0; xi < 36; xi++) {
        const float *u = U + (size_t)xi * ocp * C, *v = V + (size_t)xi * C * TB;
        float *m = M + (size_t)xi * ocp * TB;
        for (int o = 0; o < ocp; o += RB) multiply_rows8(m + (size_t)o * TB, u + (size_t)o * C, v, C);
    }
}

/* ---- output transform ---- */

#define AT6(m0, m1, m2, m3, m4, m5, r)                        \
    do {                                                      \
        v16 s12 = m1 + m2, d12 = m1 - m2;                     \
        v16 s34 = m3 + m4, d34 = m3 - m4;                     \
        r[0] = m0 + s12 + s34;                                \
        r[1] = d12 + 2.0f * d34;                              \
        r[2] = s12 + 4.0f * s34;                              \
        r[3] = d12 + 8.0f * d34 + m5;                         \
    } while (0)

/* out[4t + l] = y[l][t] for 64 floats */
static inline __attribute__((always_inline)) void interleave(float *out, const v16 y[4])
{
#define ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_HI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#define ZIP2_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23)
#define ZIP2_HI(a, b) __builtin_shufflevector(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)
    v16 s01a = ZIP_LO(y[0], y[1]), s01b = ZIP_HI(y[0], y[1]);
    v16 s23a = ZIP_LO(y[2], y[3]), s23b = ZIP_HI(y[2], y[3]);
    st(out, ZIP2_LO(s01a, s23a));
    st(out + 16, ZIP2_HI(s01a, s23a));
    st(out + 32, ZIP2_LO(s01b, s23b));
    st(out + 48, ZIP2_HI(s01b, s23b));
}

static void output_group(float *out, const float *M, int slot, const float *bias, const wino_dims *d, int g,
                         int accumulate, float *tmp)
{
    const int per_img = d->tiles_y * d->groups_x;
    const int n = g / per_img, rem = g % per_img, ty = rem / d->groups_x, gx = rem % d->groups_x;
    const int x0 = 64 * gx, y0 = 4 * ty;
    const int full_x = x0 + 64 <= d->w;
    const size_t hw = (size_t)d->h * d->w;
    for (int o = 0; o < d->oc; o++) {
        v16 t[4][6];
        for (int j = 0; j < 6; j++) {
            v16 m[6], r[4];
            for (int i = 0; i < 6; i++) m[i] = ld(M + ((size_t)(i * 6 + j) * pad8(d->oc) + o) * TB + slot * 16);
            AT6(m[0], m[1], m[2], m[3], m[4], m[5], r);
            for (int k = 0; k < 4; k++) t[k][j] = r[k];
        }
        float b = bias ? bias[o] : 0.0f;
        float *plane = out + ((size_t)n * d->oc + o) * hw;
        for (int k = 0; k < 4; k++) {
            int y = y0 + k;
            if (y >= d->h) break;
            v16 y4[4];
            AT6(t[k][0], t[k][1], t[k][2], t[k][3], t[k][4], t[k][5], y4);
            float *dst = plane + (size_t)y * d->w + x0;
            if (full_x) {
                if (accumulate) {
                    interleave(tmp, y4);
                    for (int q = 0; q < 4; q++) st(dst + 16 * q, ld(dst + 16 * q) + ld(tmp + 16 * q));
                } else {
                    for (int l = 0; l < 4; l++) y4[l] += b;
                    interleave(dst, y4);
                }
            } else {
                interleave(tmp, y4);
                int cnt = d->w - x0;
                if (accumulate)
                    for (int q = 0; q < cnt; q++) dst[q] += tmp[q];
                else
                    for (int q = 0; q < cnt; q++) dst[q] = tmp[q] + b;
            }
        }
    }
}

void ad_conv2d_winograd(float *out, const float *in, const float *w, const float *b,
                        const ad_conv_shape *s, float *work, int flip, int accumulate, int threads)
{
    wino_dims d;
    if (threads < 1) threads = 1;
    dims_of(&d, s, flip);
    float *U = work;
    if (pad8(d.oc) != d.oc) memset(U, 0, sizeof(float) * 36 * (size_t)pad8(d.oc) * d.c);
    float *thread_base = work + (((size_t)36 * ((s->c + 7) & ~7) * ((s->oc + 7) & ~7) + 15) & ~(size_t)15);
    const int maxc = s->c > s->oc ? s->c : s->oc;
    const size_t per = (per_thread_floats(maxc, maxc) + 15) & ~(size_t)15;
    const int blocks = (d.groups + 1) / 2;
#pragma omp parallel num_threads(threads)
    {
        float *V = thread_base + per * omp_get_thread_num();
        float *M = V + (size_t)36 * TB * d.c;
        float *rowbuf = M + (size_t)36 * TB * pad8(d.oc);
        float *tmp = rowbuf + 68 * 6;
        transform_weights(U, w, &d, s, flip);   /* ends with the for's barrier */
#pragma omp for schedule(static)
        for (int blk = 0; blk < blocks; blk++) {
            int g0 = 2 * blk, ng = g0 + 1 < d.groups ? 2 : 1;
            for (int k = 0; k < ng; k++) input_group(V, TB, 16 * k, in, &d, g0 + k, rowbuf);
            if (ng == 1)
                for (size_t q = 0; q < (size_t)36 * d.c; q++) memset(V + q * TB + 16, 0, 16 * sizeof(float));
            multiply(M, U, V, d.c, d.oc);
            for (int k = 0; k < ng; k++) output_group(out, M, k, b, &d, g0 + k, accumulate, tmp);
        }
    }
}

/* ---- weight gradient ----
 * With M = U . V (element-wise per tile) and Y = A^T M A, the gradient of U
 * is the sum over tiles of (A dY A^T) . V, and dw = G^T dU G. Tiles are taken
 * in chunks: both transforms run on OpenMP threads into [xi][channel][tile]
 * buffers, then 36 sgemm calls (OpenBLAS's threads, outside any OpenMP
 * region) accumulate dU[xi] += dM[xi] V[xi]^T over the chunk. */
#include <cblas.h>

#define DW_CHUNK_GROUPS 32   /* 512 tiles per chunk */

size_t ad_conv2d_winograd_dw_workspace(const ad_conv_shape *s, int threads)
{
    if (threads < 1) threads = 1;
    return (size_t)36 * s->c * s->oc + (size_t)36 * (s->c + s->oc) * DW_CHUNK_GROUPS * 16 + 64 +
           (size_t)threads * (68 * 6 + 64);
}

/* A^T applied to 4 vectors, giving 6 */
#define A4(y0, y1, y2, y3, m)                                   \
    do {                                                        \
        v16 e02 = y0 + y2, e13 = y1 + y3;                       \
        v16 f02 = y0 + 4.0f * y2, f13 = 2.0f * y1 + 8.0f * y3;  \
        m[0] = y0;                                              \
        m[1] = e02 + e13;                                       \
        m[2] = e02 - e13;                                       \
        m[3] = f02 + f13;                                       \
        m[4] = f02 - f13;                                       \
        m[5] = y3;                                              \
    } while (0)

/* dM[xi][o][col0 + t] = (A dY A^T)[xi] for the 16 tiles of group g. */
static void dout_group(float *dM, size_t ldm, int col0, const float *dout, const wino_dims *d, int g, float *rowbuf)
{
    const int per_img = d->tiles_y * d->groups_x;
    const int n = g / per_img, rem = g % per_img, ty = rem / d->groups_x, gx = rem % d->groups_x;
    const int x0 = 64 * gx, y0 = 4 * ty;
    const int full_x = x0 + 64 <= d->w;
    const size_t hw = (size_t)d->h * d->w;
    for (int o = 0; o < d->oc; o++) {
        const float *plane = dout + ((size_t)n * d->oc + o) * hw;
        v16 Y[4][4], t[6][4];
        for (int k = 0; k < 4; k++) {
            int y = y0 + k;
            if (y >= d->h) {
                for (int l = 0; l < 4; l++) Y[k][l] = (v16){0};
                continue;
            }
            const float *r = plane + (size_t)y * d->w + x0;
            if (!full_x) {
                int cnt = d->w - x0;
                for (int q = 0; q < 64; q++) rowbuf[q] = q < cnt ? r[q] : 0.0f;
                r = rowbuf;
            }
            v16 a0 = ld(r), a1 = ld(r + 16), a2 = ld(r + 32), a3 = ld(r + 48);
#define PHASE(j)                                                                               \
    do {                                                                                       \
        v16 lo = PHASE_OF(a0, a1, j), hi = PHASE_OF(a2, a3, j);                                \
        Y[k][j] = LOW_HALVES(lo, hi);                                                          \
    } while (0)
            PHASE(0);
            PHASE(1);
            PHASE(2);
            PHASE(3);
#undef PHASE
        }
        for (int l = 0; l < 4; l++) {
            v16 m[6];
            A4(Y[0][l], Y[1][l], Y[2][l], Y[3][l], m);
            for (int i = 0; i < 6; i++) t[i][l] = m[i];
        }
        for (int i = 0; i < 6; i++) {
            v16 m[6];
            A4(t[i][0], t[i][1], t[i][2], t[i][3], m);
            for (int j = 0; j < 6; j++) st(dM + ((size_t)(i * 6 + j) * d->oc + o) * ldm + col0, m[j]);
        }
    }
}

void ad_conv2d_winograd_dw(float *dw, const float *dout, const float *in, const ad_conv_shape *s, float *work,
                           int threads)
{
    wino_dims d;
    if (threads < 1) threads = 1;
    dims_of(&d, s, 0);
    const int C = d.c, OC = d.oc;
    const size_t ld = (size_t)DW_CHUNK_GROUPS * 16;
    float *dU = work;
    float *V = dU + (size_t)36 * C * OC;
    float *dM = V + (size_t)36 * C * ld;
    float *thread_base = dM + (size_t)36 * OC * ld;
    memset(dU, 0, sizeof(float) * 36 * (size_t)C * OC);
    for (int g0 = 0; g0 < d.groups; g0 += DW_CHUNK_GROUPS) {
        int ng = d.groups - g0 < DW_CHUNK_GROUPS ? d.groups - g0 : DW_CHUNK_GROUPS;
#pragma omp parallel num_threads(threads)
        {
            float *rowbuf = thread_base + (size_t)(68 * 6 + 64) * omp_get_thread_num();
#pragma omp for schedule(static)
            for (int k = 0; k < ng; k++) {
                input_group(V, ld, 16 * k, in, &d, g0 + k, rowbuf);
                dout_group(dM, ld, 16 * k, dout, &d, g0 + k, rowbuf);
            }
        }
        /* 36 small products, one per OpenMP thread at a time (OpenBLAS is kept
         * single-threaded by ad_nn_set_threads) */
#pragma omp parallel for num_threads(threads) schedule(dynamic)
        for (int xi = 0; xi < 36; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, ng * 16, 1.0f,
                        dM + (size_t)xi * OC * ld, (int)ld, V + (size_t)xi * C * ld, (int)ld, 1.0f,
                        dU + (size_t)xi * OC * C, C);
    }
    /* dw += G^T dU G for every (o, c) */
    static const float Gt[3][6] = {
        {0.25f, -1.0f / 6, -1.0f / 6, 1.0f / 24, 1.0f / 24, 0.0f},
        {0.0f, -1.0f / 6, 1.0f / 6, 1.0f / 12, -1.0f / 12, 0.0f},
        {0.0f, -1.0f / 6, -1.0f / 6, 1.0f / 6, 1.0f / 6, 1.0f},
    };
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            float u[6][6], t[3][6];
            for (int xi = 0; xi < 36; xi++) u[xi / 6][xi % 6] = dU[((size_t)xi * OC + o) * C + c];
            for (int a = 0; a < 3; a++)
                for (int j = 0; j < 6; j++) {
                    float acc = 0.0f;
                    for (int i = 0; i < 6; i++) acc += Gt[a][i] * u[i][j];
                    t[a][j] = acc;
                }
            float *w = dw + ((size_t)o * C + c) * 9;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    float acc = 0.0f;
                    for (int j = 0; j < 6; j++) acc += t[a][j] * Gt[b][j];
                    w[a * 3 + b] += acc;
                }
        }
}
