/* Anomaly-map pieces: SSIM map and top-k mean. */
#include "detect_internal.h"

#include <string.h>

#include "anomalyd/image.h"

void ad_ssim_map(float *out, const float *x, const float *y, int w, int h, float *scratch)
{
    size_t n = (size_t)w * h;
    float *mx = scratch, *my = scratch + n, *xx = scratch + 2 * n, *yy = scratch + 3 * n,
          *xy = scratch + 4 * n, *tmp = scratch + 5 * n;
    for (size_t i = 0; i < n; i++) {
        xx[i] = x[i] * x[i];
        yy[i] = y[i] * y[i];
        xy[i] = x[i] * y[i];
    }
    const float sigma = 1.5f;
    ad_blur_gaussian(mx, x, tmp, w, h, sigma);
    ad_blur_gaussian(my, y, tmp, w, h, sigma);
    ad_blur_gaussian(xx, xx, tmp, w, h, sigma);
    ad_blur_gaussian(yy, yy, tmp, w, h, sigma);
    ad_blur_gaussian(xy, xy, tmp, w, h, sigma);
    /* data range 2 ([-1, 1]): C1 = (0.01 * 2)^2, C2 = (0.03 * 2)^2 */
    const float c1 = 0.0004f, c2 = 0.0036f;
    for (size_t i = 0; i < n; i++) {
        float vx = xx[i] - mx[i] * mx[i], vy = yy[i] - my[i] * my[i];
        float cov = xy[i] - mx[i] * my[i];
        out[i] = ((2 * mx[i] * my[i] + c1) * (2 * cov + c2)) /
                 ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
    }
}

/* Quickselect (Hoare partition): afterwards v[0..k) hold the k largest. */
static void select_largest(float *v, long n, long k)
{
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        /* [lo, j] >= pivot, (j, i) == pivot, [i, hi] <= pivot */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else return;
    }
}

double ad_topk_mean(float *v, size_t n, size_t k)
{
    if (n == 0) return 0;
    if (k < 1) k = 1;
    if (k > n) k = n;
    select_largest(v, (long)n, (long)k);
    double s = 0;
    for (size_t i = 0; i < k; i++) s += v[i];
    return s / (double)k;
}
