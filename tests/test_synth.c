/* Synthetic defects: reproducible from the seed, masks where the image
 * changed, the configured share left clean, every shape and fill reachable. */
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/synth.h"

enum { C = 1, H = 64, W = 64 };

static void make_surface(float *img, uint64_t seed)
{
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            img[y * W + x] = 0.2f * sinf(0.7f * x) + 0.05f * ad_rng_normal(&rng);
}

static void same_seed_same_samples(void **state)
{
    (void)state;
    float img[C * H * W], other[C * H * W];
    make_surface(img, 1);
    make_surface(other, 2);
    size_t ns = ad_synth_scratch_floats(C, H, W);
    float *scratch = calloc(ns, sizeof(float));
    float out1[C * H * W], out2[C * H * W], m1[H * W], m2[H * W];
    ad_synth_opts o;
    ad_synth_default_opts(&o);
    ad_rng a, b;
    ad_rng_seed(&a, 99);
    ad_rng_seed(&b, 99);
    for (int i = 0; i < 20; i++) {
        ad_synth_sample(out1, m1, img, other, C, H, W, &o, &a, scratch, NULL);
        ad_synth_sample(out2, m2, img, other, C, H, W, &o, &b, scratch, NULL);
        assert_memory_equal(out1, out2, sizeof out1);
        assert_memory_equal(m1, m2, sizeof m1);
    }
    free(scratch);
}

static void masks_mark_changes_and_clean_share_holds(void **state)
{
    (void)state;
    float img[C * H * W], other[C * H * W], out[C * H * W], mask[H * W];
    make_surface(img, 3);
    make_surface(other, 4);
    float *scratch = calloc(ad_synth_scratch_floats(C, H, W), sizeof(float));
    ad_synth_opts o;
    ad_synth_default_opts(&o);
    ad_rng rng;
    ad_rng_seed(&rng, 5);
    int clean = 0, n = 400, shapes[3] = {0}, fills[AD_SYNTH_FILL_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        ad_synth_info info;
        ad_synth_sample(out, mask, img, other, C, H, W, &o, &rng, scratch, &info);
        long area = 0;
        double inside = 0, outside = 0;
        for (int p = 0; p < H * W; p++) {
            assert_true(mask[p] == 0.0f || mask[p] == 1.0f);
            assert_true(out[p] >= -1.0f && out[p] <= 1.0f);
            area += mask[p] > 0.5f;
            double d = fabs(out[p] - img[p]);
            if (mask[p] > 0.5f)
                inside += d;
            else
                outside += d;
        }
        assert_int_equal(area, info.area);
        if (info.shape < 0) {
            clean++;
            assert_int_equal(area, 0);
            assert_true(outside == 0.0);
            continue;
        }
        shapes[info.shape]++;
        fills[info.fill]++;
        assert_true(area > 0);
        assert_true(area < H * W / 2);
        /* changes live in the mask: beyond the soft edge (3 pixels) nothing differs */
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int near = 0;
                for (int dy = -3; dy <= 3 && !near; dy++)
                    for (int dx = -3; dx <= 3 && !near; dx++) {
                        int yy = y + dy, xx = x + dx;
                        near = yy >= 0 && yy < H && xx >= 0 && xx < W && mask[yy * W + xx] > 0.5f;
                    }
                if (!near) assert_true(out[y * W + x] == img[y * W + x]);
            }
        if (info.fill != AD_SYNTH_FILL_BLUR) assert_true(inside > 0);
    }
    double share = (double)clean / n;
    assert_true(share > 0.22 && share < 0.38);
    for (int s = 0; s < 3; s++) assert_true(shapes[s] > 0);
    for (int f = 0; f < AD_SYNTH_FILL_COUNT; f++) assert_true(fills[f] > 0);
    free(scratch);
}

static void without_other_image_never_pastes(void **state)
{
    (void)state;
    float img[C * H * W], out[C * H * W], mask[H * W];
    make_surface(img, 6);
    float *scratch = calloc(ad_synth_scratch_floats(C, H, W), sizeof(float));
    ad_synth_opts o;
    ad_synth_default_opts(&o);
    o.p_clean = 0;
    ad_rng rng;
    ad_rng_seed(&rng, 7);
    for (int i = 0; i < 100; i++) {
        ad_synth_info info;
        ad_synth_sample(out, mask, img, NULL, C, H, W, &o, &rng, scratch, &info);
        assert_true(info.fill != AD_SYNTH_FILL_OTHER);
        assert_true(info.area > 0);
    }
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_samples),
        cmocka_unit_test(masks_mark_changes_and_clean_share_holds),
        cmocka_unit_test(without_other_image_never_pastes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
