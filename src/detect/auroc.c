/* Exact pixel AUROC (Mann-Whitney U, ties counted half) over every pixel of
 * a test set, with 4 bytes per pixel. */
#include "anomalyd/detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"

/* Float -> uint32 with the same order (negatives flipped). */
static inline uint32_t float_key(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

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

/* LSD radix sort, 4 passes of 8 bits. */
static void radix_sort_u32(uint32_t *v, size_t n)
{
    if (n < 2) return;
    uint32_t *tmp = ad_xmalloc(n * sizeof *tmp);
    uint32_t *src = v, *dst = tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((src[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    /* four passes: the sorted data is back in v */
    free(tmp);
}

double ad_auroc_acc_compute(ad_auroc_acc *a)
{
    if (a->npos == 0 || a->nneg == 0) return NAN;
    radix_sort_u32(a->pos, a->npos);
    radix_sort_u32(a->neg, a->nneg);
    double u = 0;
    size_t j = 0; /* negatives strictly below the current positive value */
    for (size_t i = 0; i < a->npos;) {
        uint32_t v = a->pos[i];
        size_t gp = 0;
        while (i < a->npos && a->pos[i] == v) {
            gp++;
            i++;
        }
        while (j < a->nneg && a->neg[j] < v) j++;
        size_t eq = 0;
        while (j + eq < a->nneg && a->neg[j + eq] == v) eq++;
        u += (double)gp * ((double)j + 0.5 * (double)eq);
    }
    return u / ((double)a->npos * (double)a->nneg);
}

void ad_auroc_acc_free(ad_auroc_acc *a)
{
    free(a->pos);
    free(a->neg);
    memset(a, 0, sizeof *a);
}
