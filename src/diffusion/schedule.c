/* Noise schedules: linear (Ho et al. 2020, beta 1e-4..0.02) and cosine
 * (Nichol & Dhariwal 2021, s = 0.008, beta capped at 0.999), with abar_t the
 * cumulative product of (1 - beta). Computed in double so both sides of a
 * model file agree to the last float bit. */
#include "anomalyd/diffusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"

static double cosine_f(double t, int T)
{
    const double s = 0.008;
    double c = cos((t / T + s) / (1.0 + s) * M_PI / 2.0);
    return c * c;
}

int ad_schedule_init(ad_noise_schedule *s, int kind, int T, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (T < 2 || T > 100000)
        return ad_err(err, errlen, "diffusion steps T must be between 2 and 100000, got %d", T);
    if (kind != AD_SCHEDULE_LINEAR && kind != AD_SCHEDULE_COSINE)
        return ad_err(err, errlen, "unknown noise schedule %d (expected linear or cosine)", kind);
    s->T = T;
    s->kind = kind;
    s->betas = ad_xmalloc((size_t)T * sizeof *s->betas);
    s->alphas_cumprod = ad_xmalloc((size_t)T * sizeof *s->alphas_cumprod);
    for (int i = 0; i < T; i++) {
        double beta;
        if (kind == AD_SCHEDULE_LINEAR) {
            /* the 1e-4..0.02 range is defined for T = 1000; scale like
             * improved-diffusion so other T keep the same total noise */
            double scale = 1000.0 / T;
            double lo = scale * 1e-4, hi = scale * 0.02;
            beta = lo + (hi - lo) * i / (T - 1);
        } else {
            beta = 1.0 - cosine_f(i + 1, T) / cosine_f(i, T);
            if (beta > 0.999) beta = 0.999;
        }
        s->betas[i] = beta;
        s->alphas_cumprod[i] = (i ? s->alphas_cumprod[i - 1] : 1.0) * (1.0 - beta);
    }
    return 0;
}

void ad_schedule_free(ad_noise_schedule *s)
{
    if (!s) return;
    free(s->betas);
    free(s->alphas_cumprod);
    s->betas = NULL;
    s->alphas_cumprod = NULL;
    s->T = 0;
}
