/* 16-float vectors (GCC vector extensions; AVX-512 registers with
 * -march=native, split into narrower ones elsewhere) and a vector exp. */
#ifndef ANOMALYD_NN_VMATH_H
#define ANOMALYD_NN_VMATH_H

/* 64-byte vectors passed between static functions: without AVX-512 the
 * compiler notes an ABI difference that cannot matter here. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) v16 v16_load(const float *p) { return *(const v16u *)p; }
static inline __attribute__((always_inline)) void v16_store(float *p, v16 v) { *(v16u *)p = v; }
static inline __attribute__((always_inline)) v16 v16_set(float s) { return (v16){0} + s; }
static inline __attribute__((always_inline)) float v16_sum(v16 v)
{
    float s = 0.0f;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

static inline __attribute__((always_inline)) v16 v16_select(v16i mask, v16 a, v16 b)   /* mask ? a : b */
{
    return (v16)(((v16i)a & mask) | ((v16i)b & ~mask));
}

/* exp(x) with relative error below 2e-7 on [-87, 88]: x = k ln2 + r,
 * |r| <= ln2/2, degree-6 Taylor polynomial for e^r, 2^k through the
 * exponent bits. Inputs are clamped, so the result is finite. */
static inline __attribute__((always_inline)) v16 v16_exp(v16 x)
{
    const v16 lo = v16_set(-87.0f), hi = v16_set(88.0f);
    x = v16_select(x < lo, lo, x);
    x = v16_select(x > hi, hi, x);
    v16 kf = x * 1.44269504088896341f;
    kf = kf + v16_set(12582912.0f) - v16_set(12582912.0f);   /* round to nearest */
    v16 r = x - kf * 0.693359375f;                             /* ln2 in two parts */
    r = r + kf * 2.12194440e-4f;
    v16 p = v16_set(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v16i k = __builtin_convertvector(kf, v16i);
    v16i bits = (k + 127) << 23;
    return p * (v16)bits;
}

/* silu(y) = y * sigmoid(y) */
static inline __attribute__((always_inline)) v16 v16_silu(v16 y) { return y / (1.0f + v16_exp(-y)); }

#endif
