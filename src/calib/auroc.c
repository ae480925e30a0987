/* AUROC by ranks (Mann-Whitney U): sort once, average ranks over ties. */
#include <math.h>
#include <stdlib.h>

#include "anomalyd/calib.h"
#include "anomalyd/util.h"

typedef struct labeled {
    double s;
    uint8_t pos;
} labeled;

static int cmp_labeled(const void *a, const void *b)
{
    double x = ((const labeled *)a)->s, y = ((const labeled *)b)->s;
    return (x > y) - (x < y);
}

/* v holds n entries; sorted in place. */
static double auroc_labeled(labeled *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_labeled);
    double npos = 0, rank_sum = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        double pos_here = 0;
        while (j < n && v[j].s == v[i].s) pos_here += v[j++].pos;
        /* ranks i+1 .. j share their average */
        double avg_rank = 0.5 * ((double)(i + 1) + (double)j);
        rank_sum += pos_here * avg_rank;
        npos += pos_here;
        i = j;
    }
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    double u = rank_sum - npos * (npos + 1) / 2;
    return u / (npos * nneg);
}

double ad_auroc(const double *scores, const uint8_t *labels, size_t n)
{
    if (n == 0) return NAN;
    labeled *v = ad_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (labeled){scores[i], labels[i] != 0};
    double a = auroc_labeled(v, n);
    free(v);
    return a;
}

double ad_auroc_f(const float *scores, const uint8_t *labels, size_t n)
{
    if (n == 0) return NAN;
    labeled *v = ad_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (labeled){scores[i], labels[i] != 0};
    double a = auroc_labeled(v, n);
    free(v);
    return a;
}

double ad_auroc_sets(const double *good, size_t ngood, const double *bad, size_t nbad)
{
    size_t n = ngood + nbad;
    if (ngood == 0 || nbad == 0) return NAN;
    labeled *v = ad_xmalloc(n * sizeof *v);
    for (size_t i = 0; i < ngood; i++) v[i] = (labeled){good[i], 0};
    for (size_t i = 0; i < nbad; i++) v[ngood + i] = (labeled){bad[i], 1};
    double a = auroc_labeled(v, n);
    free(v);
    return a;
}
