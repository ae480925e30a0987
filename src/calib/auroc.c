/* AUROC, the one implementation (Mann-Whitney U, ties counted half): values
 * become order-preserving unsigned keys (32 bits for float, 64 for double),
 * positives and negatives are radix-sorted apart, and one merge counts the
 * pairs. Image AUROC (double scores) and pixel AUROC (float maps, tens of
 * millions of values at 4 bytes each) differ only in the key width. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

/* -0 and +0 are one value (a tie), as they compare. */
static inline uint32_t float_key(float f)
{
    uint32_t b;
    if (f == 0) f = 0;
    memcpy(&b, &f, 4);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

static inline uint64_t double_key(double f)
{
    uint64_t b;
    if (f == 0) f = 0;
    memcpy(&b, &f, 8);
    return (b & 0x8000000000000000ull) ? ~b : (b | 0x8000000000000000ull);
}

/* Sorted keys of one class: 4 or 8 bytes each (`wide`). */
typedef struct keys {
    void *v;
    size_t n;
    int wide;
} keys;

static inline uint64_t key_at(const keys *k, size_t i)
{
    return k->wide ? ((const uint64_t *)k->v)[i] : ((const uint32_t *)k->v)[i];
}

static inline void key_set(keys *k, size_t i, uint64_t key)
{
    if (k->wide)
        ((uint64_t *)k->v)[i] = key;
    else
        ((uint32_t *)k->v)[i] = (uint32_t)key;
}

/* LSD radix sort, 8 bits a pass: 4 passes for 32-bit keys, 8 for 64-bit; an
 * even count, so the sorted keys end in k->v. */
static void radix_sort(keys *k)
{
    if (k->n < 2) return;
    unsigned bits = k->wide ? 64 : 32;
    keys src = *k, dst = {ad_xmalloc(k->n * (bits / 8)), k->n, k->wide};
    void *tmp = dst.v;
    for (unsigned shift = 0; shift < bits; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < k->n; i++) count[((key_at(&src, i) >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < k->n; i++) {
            uint64_t key = key_at(&src, i);
            key_set(&dst, count[(key >> shift) & 0xff]++, key);
        }
        keys t = src;
        src = dst;
        dst = t;
    }
    free(tmp);
}

/* U / (npos * nneg) over sorted keys; NaN when a class is empty. */
static double auroc_sorted(const keys *pos, const keys *neg)
{
    if (pos->n == 0 || neg->n == 0) return NAN;
    double u = 0;
    size_t j = 0; /* negatives strictly below the current positive value */
    for (size_t i = 0; i < pos->n;) {
        uint64_t v = key_at(pos, i);
        size_t gp = 0;
        while (i < pos->n && key_at(pos, i) == v) {
            gp++;
            i++;
        }
        while (j < neg->n && key_at(neg, j) < v) j++;
        size_t eq = 0;
        while (j + eq < neg->n && key_at(neg, j + eq) == v) eq++;
        u += (double)gp * ((double)j + 0.5 * (double)eq);
    }
    return u / ((double)pos->n * (double)neg->n);
}

static double auroc_keys(keys *pos, keys *neg)
{
    radix_sort(pos);
    radix_sort(neg);
    return auroc_sorted(pos, neg);
}

/* ---- double scores (images) ---- */

double ad_auroc(const double *scores, const uint8_t *labels, size_t n)
{
    size_t np = 0;
    for (size_t i = 0; i < n; i++) np += labels[i] != 0;
    keys pos = {ad_xmalloc(np * 8), 0, 1}, neg = {ad_xmalloc((n - np) * 8), 0, 1};
    for (size_t i = 0; i < n; i++) {
        keys *k = labels[i] ? &pos : &neg;
        key_set(k, k->n++, double_key(scores[i]));
    }
    double a = auroc_keys(&pos, &neg);
    free(pos.v);
    free(neg.v);
    return a;
}

double ad_auroc_sets(const double *good, size_t ngood, const double *bad, size_t nbad)
{
    keys pos = {ad_xmalloc(nbad * 8), nbad, 1}, neg = {ad_xmalloc(ngood * 8), ngood, 1};
    for (size_t i = 0; i < nbad; i++) key_set(&pos, i, double_key(bad[i]));
    for (size_t i = 0; i < ngood; i++) key_set(&neg, i, double_key(good[i]));
    double a = auroc_keys(&pos, &neg);
    free(pos.v);
    free(neg.v);
    return a;
}

/* ---- float values (pixels), accumulated over a test set ---- */

static void push(uint32_t **buf, size_t *len, size_t *cap, uint32_t key)
{
    if (*len == *cap) {
        *cap = *cap ? *cap * 2 : 1 << 16;
        *buf = ad_xrealloc(*buf, *cap * sizeof **buf);
    }
    (*buf)[(*len)++] = key;
}

void ad_auroc_acc_add(ad_auroc_acc *a, const float *values, const uint8_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t k = float_key(values[i]);
        if (labels[i]) push(&a->pos, &a->npos, &a->cap_pos, k);
        else push(&a->neg, &a->nneg, &a->cap_neg, k);
    }
}

double ad_auroc_acc_compute(ad_auroc_acc *a)
{
    keys pos = {a->pos, a->npos, 0}, neg = {a->neg, a->nneg, 0};
    return auroc_keys(&pos, &neg);
}

void ad_auroc_acc_free(ad_auroc_acc *a)
{
    free(a->pos);
    free(a->neg);
    memset(a, 0, sizeof *a);
}

double ad_auroc_f(const float *scores, const uint8_t *labels, size_t n)
{
    ad_auroc_acc a = {0};
    ad_auroc_acc_add(&a, scores, labels, n);
    double r = ad_auroc_acc_compute(&a);
    ad_auroc_acc_free(&a);
    return r;
}
