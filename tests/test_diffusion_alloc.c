/* The sampler never allocates while reconstructing: the malloc family is
 * wrapped at link time (tests/cmake/diffusion.cmake) and counted while a
 * real UNet reconstructs with several steps, guidance and draws. */
#include "test_support.h"

#include <stdlib.h>
#include <string.h>

#include "anomalyd/diffusion.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

static int armed;
static long allocations;

void *__real_malloc(size_t n);
void *__real_calloc(size_t c, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);

void *__wrap_malloc(size_t n)
{
    if (armed) allocations++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t c, size_t n)
{
    if (armed) allocations++;
    return __real_calloc(c, n);
}
void *__wrap_realloc(void *p, size_t n)
{
    if (armed) allocations++;
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n)
{
    if (armed) allocations++;
    return __real_aligned_alloc(a, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
    if (armed) allocations++;
    return __real_posix_memalign(p, a, n);
}

static void reconstruct_does_not_allocate(void **state)
{
    (void)state;
    char err[AD_ERRLEN];
    ad_unet_hparams hp = {.in_channels = 1, .base_channels = 8, .num_levels = 2,
                          .channel_mult = {1, 2}, .res_blocks = 1, .groups = 4};
    ad_unet *u = NULL;
    if (ad_unet_create(&u, &hp, err, sizeof err) != 0) fail_msg("%s", err);
    ad_unet_init(u, 3);
    ad_noise_schedule s;
    assert_int_equal(ad_schedule_init(&s, AD_SCHEDULE_LINEAR, AD_DIFFUSION_T, err, sizeof err), 0);
    ad_sampler *sm = NULL;
    const int h = 32, w = 48;
    if (ad_sampler_create(&sm, u, &s, 1, h, w, err, sizeof err) != 0) fail_msg("%s", err);
    float *x = ad_xmalloc(sizeof(float) * h * w), *y = ad_xmalloc(sizeof(float) * h * w);
    for (int i = 0; i < h * w; i++) x[i] = (float)((i * 37) % 200) / 100.0f - 1.0f;
    ad_recon_opts opts = {.noise_level = 0.3, .steps = 3, .guidance = 1.5, .draws = 2};
    ad_sampler_reconstruct(sm, y, x, &opts, 1); /* warm-up: thread pools start */
    /* the counter sees the library's allocations */
    armed = 1;
    free(ad_xmalloc(16));
    free(ad_xalloc_aligned(16));
    armed = 0;
    assert_int_equal(allocations, 2);
    armed = 1;
    allocations = 0;
    ad_sampler_reconstruct(sm, y, x, &opts, 2);
    opts.steps = 1;
    opts.draws = 1;
    opts.guidance = 0;
    ad_sampler_reconstruct(sm, y, x, &opts, 3);
    armed = 0;
    assert_int_equal(allocations, 0);
    for (int i = 0; i < h * w; i++) assert_true(y[i] >= -1.0f && y[i] <= 1.0f);

    /* the unet's size and channel rules are checked at create */
    ad_sampler *bad = NULL;
    assert_int_equal(ad_sampler_create(&bad, u, &s, 1, 31, 48, err, sizeof err), -1);
    assert_non_null(strstr(err, "multiple of 2"));
    assert_int_equal(ad_sampler_create(&bad, u, &s, 3, 32, 48, err, sizeof err), -1);
    assert_non_null(strstr(err, "takes 1 channel"));
    assert_null(bad);

    free(x);
    free(y);
    ad_sampler_free(sm);
    ad_schedule_free(&s);
    ad_unet_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reconstruct_does_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
