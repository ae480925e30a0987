/* Partial-noise reconstruction: noise the input to t0, then K deterministic
 * DDIM steps back to t = 0, optionally guided toward the input (DDAD), over
 * one or more noise draws. The network is behind a callback, so this file
 * never touches the UNet (sampler_unet.c binds the two). */
#include "anomalyd/diffusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/util.h"

struct ad_sampler {
    ad_eps_fn fn;
    void *user;
    int T, c, h, w;
    double *abar;          /* T entries, copied from the schedule */
    int *ts;               /* T entries: timestep sequence scratch */
    float *x, *eps, *acc;  /* c*h*w each */
};

int ad_recon_t0(int T, double noise_level)
{
    long t0 = lround(noise_level * T) - 1;
    if (t0 < 0) t0 = 0;
    if (t0 > T - 1) t0 = T - 1;
    return (int)t0;
}

int ad_recon_timesteps(int t0, int steps, int *ts, int max_ts)
{
    int k = steps < 1 ? 1 : steps;
    if (k > t0 + 1) k = t0 + 1;
    if (k > max_ts) k = max_ts;
    for (int i = 0; i < k; i++) ts[i] = (int)((long)(t0 + 1) * (k - i) / k) - 1;
    return k;
}

int ad_sampler_create_fn(ad_sampler **out, ad_eps_fn fn, void *user,
                         const ad_noise_schedule *s, int c, int h, int w,
                         char *err, size_t errlen)
{
    *out = NULL;
    if (!fn || !s || !s->alphas_cumprod || s->T < 2)
        return ad_err(err, errlen, "sampler: no model or no noise schedule");
    if ((c != 1 && c != 3) || h < 1 || w < 1 || (size_t)h * (size_t)w > (size_t)1 << 28)
        return ad_err(err, errlen, "sampler: unsupported input %dx%dx%d (channels 1 or 3)",
                      c, h, w);
    ad_sampler *sm = ad_xcalloc(1, sizeof *sm);
    sm->fn = fn;
    sm->user = user;
    sm->T = s->T;
    sm->c = c;
    sm->h = h;
    sm->w = w;
    sm->abar = ad_xmalloc((size_t)s->T * sizeof *sm->abar);
    memcpy(sm->abar, s->alphas_cumprod, (size_t)s->T * sizeof *sm->abar);
    sm->ts = ad_xmalloc((size_t)s->T * sizeof *sm->ts);
    size_t n = (size_t)c * h * w;
    sm->x = ad_xalloc_aligned(n * sizeof(float));
    sm->eps = ad_xalloc_aligned(n * sizeof(float));
    sm->acc = ad_xalloc_aligned(n * sizeof(float));
    *out = sm;
    return 0;
}

void ad_sampler_free(ad_sampler *sm)
{
    if (!sm) return;
    free(sm->abar);
    free(sm->ts);
    free(sm->x);
    free(sm->eps);
    free(sm->acc);
    free(sm);
}

/* One reverse pass from x_t0 (in sm->x); adds the result into sm->acc. */
static void reverse_pass(ad_sampler *sm, const float *x0, int nts, double guidance)
{
    size_t n = (size_t)sm->c * sm->h * sm->w;
    float *x = sm->x, *eps = sm->eps;
    for (int i = 0; i < nts; i++) {
        int t = sm->ts[i];
        double at = sm->abar[t];
        double ap = i + 1 < nts ? sm->abar[sm->ts[i + 1]] : 1.0;
        float tf = (float)t;
        sm->fn(sm->user, eps, x, &tf, 1, sm->h, sm->w);
        float sa = (float)sqrt(at), s1a = (float)sqrt(1.0 - at);
        if (guidance > 0) {
            float g = (float)(guidance * sqrt(1.0 - at));
            for (size_t j = 0; j < n; j++) {
                float yt = sa * x0[j] + s1a * eps[j];
                eps[j] -= g * (yt - x[j]);
            }
        }
        float inv_sa = 1.0f / sa, sp = (float)sqrt(ap), s1p = (float)sqrt(1.0 - ap);
        for (size_t j = 0; j < n; j++) {
            float x0p = (x[j] - s1a * eps[j]) * inv_sa;
            x[j] = sp * x0p + s1p * eps[j];
        }
    }
    for (size_t j = 0; j < n; j++) sm->acc[j] += x[j];
}

void ad_sampler_reconstruct(ad_sampler *sm, float *x_hat, const float *x0,
                            const ad_recon_opts *opts, uint64_t seed)
{
    size_t n = (size_t)sm->c * sm->h * sm->w;
    int t0 = ad_recon_t0(sm->T, opts->noise_level);
    int nts = ad_recon_timesteps(t0, opts->steps, sm->ts, sm->T);
    int draws = opts->draws < 1 ? 1 : opts->draws;
    float sa = (float)sqrt(sm->abar[t0]), s1a = (float)sqrt(1.0 - sm->abar[t0]);
    memset(sm->acc, 0, n * sizeof(float));
    for (int d = 0; d < draws; d++) {
        ad_rng rng;
        ad_rng_seed(&rng, seed + (uint64_t)d * 0x9e3779b97f4a7c15ULL);
        for (size_t j = 0; j < n; j++) sm->x[j] = sa * x0[j] + s1a * ad_rng_normal(&rng);
        reverse_pass(sm, x0, nts, opts->guidance);
    }
    float inv = 1.0f / (float)draws;
    for (size_t j = 0; j < n; j++) {
        float v = sm->acc[j] * inv;
        x_hat[j] = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
    }
}
