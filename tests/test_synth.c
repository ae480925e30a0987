/* Synthetic defects: reproducible from the seed, masks where the image
 * changed, the configured share left clean, every shape and fill reachable;
 * the fine defects of train.head_detail faint where thin and more often at
 * the image's edges. */
#include "test_support.h"

#include <math.h>
#include <stdbool.h>
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

static void check_masks_and_clean_share(bool fine)
{
    float img[C * H * W], other[C * H * W], out[C * H * W], mask[H * W];
    make_surface(img, 3);
    make_surface(other, 4);
    float *scratch = calloc(ad_synth_scratch_floats(C, H, W), sizeof(float));
    ad_synth_opts o;
    ad_synth_default_opts(&o);
    o.fine = fine;
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

static void masks_mark_changes_and_clean_share_holds(void **state)
{
    (void)state;
    check_masks_and_clean_share(false);
}

static void fine_masks_mark_changes_and_clean_share_holds(void **state)
{
    (void)state;
    check_masks_and_clean_share(true);
}

/* On a flat surface a line only shifts the pixels it covers. The default
 * lines shift every such pixel by the same amount; the fine ones shift
 * pixels they cover partly by less (a line thinner than a pixel is faint),
 * and the fine defects lie anywhere, so more of their pixels are on the
 * image's border. */
static void fine_defects_are_faint_and_reach_the_edges(void **state)
{
    (void)state;
    float img[C * H * W] = {0}, other[C * H * W] = {0}, out[C * H * W], mask[H * W];
    float *scratch = calloc(ad_synth_scratch_floats(C, H, W), sizeof(float));
    double border_share[2];
    for (int fine = 0; fine <= 1; fine++) {
        ad_synth_opts o;
        ad_synth_default_opts(&o);
        o.fine = fine;
        o.p_clean = 0;
        ad_rng rng;
        ad_rng_seed(&rng, 11);
        int lines = 0, faint = 0;
        long area = 0, border = 0;
        for (int i = 0; i < 600; i++) {
            ad_synth_info info;
            ad_synth_sample(out, mask, img, other, C, H, W, &o, &rng, scratch, &info);
            area += info.area;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    border += mask[y * W + x] > 0.5f && (x == 0 || y == 0 || x == W - 1 || y == H - 1);
            if (info.shape == AD_SYNTH_BLOB) continue;
            lines++;
            float full = 0;
            for (int p = 0; p < H * W; p++) full = fmaxf(full, fabsf(out[p]));
            for (int p = 0; p < H * W; p++)
                if (out[p] != 0.0f && fabsf(out[p]) < 0.9f * full) {
                    faint++;
                    break;
                }
        }
        border_share[fine] = (double)border / (double)area;
        print_message("fine %d: %d of %d lines with faint pixels, %.4f of defect pixels on the border\n", fine,
                      faint, lines, border_share[fine]);
        assert_true(lines > 100);
        if (fine)
            assert_true(faint > lines / 2);
        else
            assert_int_equal(faint, 0);
    }
    assert_true(border_share[1] > 2 * border_share[0]);
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
        cmocka_unit_test(fine_masks_mark_changes_and_clean_share_holds),
        cmocka_unit_test(fine_defects_are_faint_and_reach_the_edges),
        cmocka_unit_test(without_other_image_never_pastes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
