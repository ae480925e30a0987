/* AdamW, global gradient-norm clipping, EMA of weights and the thread knob. */
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "anomalyd/unet.h"

static int nn_threads;   /* 0 = never set: OpenMP's default */

int ad_nn_get_threads(void)
{
    if (nn_threads == 0) ad_nn_set_threads(omp_get_max_threads());   /* OpenBLAS to one thread */
    return nn_threads;
}

void ad_nn_set_threads(int threads)
{
    if (threads < 1) threads = 1;
    nn_threads = threads;
    /* One pool: the kernels split their work over OpenMP threads and call
     * sgemm single-threaded on each share. With OpenBLAS's own pool active
     * too, its spinning workers and OpenMP's fought over the cores (training
     * ran 3x slower in wall time on the loaded 2-core machine). */
    openblas_set_num_threads(1);
    omp_set_num_threads(threads);
}

/* Same arithmetic as torch.optim.AdamW (decoupled decay, bias correction). */
void ad_adamw_update(ad_adamw *opt, float *params, const float *grads, float *m, float *v, size_t n)
{
    opt->step++;
    const double bc1 = 1.0 - pow(opt->beta1, (double)opt->step);
    const double bc2 = 1.0 - pow(opt->beta2, (double)opt->step);
    const float step_size = (float)(opt->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float decay = 1.0f - opt->lr * opt->weight_decay;
    const float b1 = opt->beta1, b2 = opt->beta2, eps = opt->eps;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        params[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        params[i] -= step_size * m[i] / denom;
    }
}

/* Like torch.nn.utils.clip_grad_norm_: scale = max_norm / (norm + 1e-6) if < 1. */
float ad_clip_grad_norm(float *grads, size_t n, float max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grads[i] * grads[i];
    float norm = (float)sqrt(ss);
    if (max_norm > 0.0f) {
        float scale = max_norm / (norm + 1e-6f);
        if (scale < 1.0f)
            for (size_t i = 0; i < n; i++) grads[i] *= scale;
    }
    return norm;
}

void ad_ema_update(float *ema, const float *params, size_t n, float decay)
{
    const float one_minus = 1.0f - decay;
    for (size_t i = 0; i < n; i++) ema[i] = decay * ema[i] + one_minus * params[i];
}
