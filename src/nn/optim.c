/* AdamW, global gradient-norm clipping, EMA of weights and the thread knob. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>

#include "anomalyd/unet.h"

/* 0 = never set: OpenMP's default. Atomic: the daemon's SIGHUP reload sets
 * it (opening the new detector in the main thread) while the inspection
 * thread's kernels read it. A kernel that reads the new count during the
 * reload only splits its work differently: the UNet's scratch is sized for
 * the threads at reserve and conv_threads() clamps to that. */
static atomic_int nn_threads;

int ad_nn_get_threads(void)
{
    int t = atomic_load_explicit(&nn_threads, memory_order_relaxed);
    if (t == 0) {
        ad_nn_set_threads(omp_get_max_threads());   /* OpenBLAS to one thread */
        t = atomic_load_explicit(&nn_threads, memory_order_relaxed);
    }
    return t;
}

void ad_nn_set_threads(int threads)
{
    if (threads < 1) threads = 1;
    atomic_store_explicit(&nn_threads, threads, memory_order_relaxed);
    /* One pool: the kernels split their work over OpenMP threads and call
     * sgemm single-threaded on each share. With OpenBLAS's own pool active
     * too, its spinning workers and OpenMP's fought over the cores (training
     * ran 3x slower in wall time on the loaded 2-core machine). */
    openblas_set_num_threads(1);
    omp_set_num_threads(threads);
}

void ad_nn_thread_follow(void)
{
    int t = ad_nn_get_threads();
    if (omp_get_max_threads() != t) omp_set_num_threads(t);
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
