/* Builds a large reject log for bench/report.sh: ROWS rejects spread over
 * DAYS up to now and real PNG files (ROI and heat-map overlay, SIDE x SIDE)
 * for the newest IMAGES rejects, written by the daemon's own store code.
 * Older rows name files that are gone (as after retention by age or by
 * hand) or no file (as after the size cap). The script adds the counters.
 *
 * usage: report_log DB IMAGE_DIR ROWS DAYS IMAGES SIDE PART.png...
 * (PART.png: good parts, e.g. the fixture training set, resized to SIDE
 * with camera-like noise so the files compress like real ones) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomalyd/image.h"
#include "anomalyd/store.h"
#include "anomalyd/util.h"

#define BATCH 10000
#define SHA "5f0c3b1e9a7d4c2b8e6f1a0d3c5b7e9f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b"

static void die_if(int rc, const char *err)
{
    if (rc != 0) {
        fprintf(stderr, "report_log: %s\n", err);
        exit(1);
    }
}

/* A part at SIDE x SIDE with camera noise, and its heat-map overlay with a
 * blob at the box. */
static void make_images(ad_image *frame, ad_image *heat, const ad_image *part, int side,
                        ad_rng *rng, int bx, int by, int bw, int bh)
{
    die_if(ad_image_resize(frame, part, side, side), "cannot resize a part");
    for (size_t i = 0; i < (size_t)side * side * frame->c; i++) {
        float v = frame->px[i] + 4.0f * ad_rng_normal(rng);
        frame->px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    float *map = ad_xmalloc((size_t)side * side * sizeof *map);
    float cx = bx + bw / 2.0f, cy = by + bh / 2.0f, r = (bw + bh) / 3.0f + 1;
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            float d2 = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r);
            map[(size_t)y * side + x] = expf(-d2) + 0.05f * ad_rng_uniform(rng);
        }
    die_if(ad_heatmap_overlay(heat, frame, map, 0, 1, 0.5f), "cannot draw a heat map");
    free(map);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: report_log DB IMAGE_DIR ROWS DAYS IMAGES SIDE PART.png...\n");
        return 2;
    }
    const char *db = argv[1], *image_dir = argv[2];
    long rows = atol(argv[3]), days = atol(argv[4]), images = atol(argv[5]);
    int side = atoi(argv[6]);
    char err[AD_ERRLEN];
    ad_store_options opt = {.save_images = true};
    snprintf(opt.database, sizeof opt.database, "%s", db);
    snprintf(opt.image_dir, sizeof opt.image_dir, "%s", image_dir);
    ad_store *st = NULL;
    die_if(ad_store_open(&st, &opt, err, sizeof err), err);

    int nparts = argc - 7;
    ad_image *parts = ad_xcalloc((size_t)nparts, sizeof *parts);
    for (int i = 0; i < nparts; i++) die_if(ad_png_read(argv[7 + i], 1, &parts[i], err, sizeof err), err);

    ad_rng rng;
    ad_rng_seed(&rng, 17);
    int64_t now = (int64_t)time(NULL), span = (int64_t)days * 86400, start = now - span;
    double t0 = ad_now_sec();

    /* rejects, oldest first, in transactions of BATCH rows */
    ad_reject *batch = ad_xcalloc(BATCH, sizeof *batch);
    const ad_reject **ptrs = ad_xmalloc(BATCH * sizeof *ptrs);
    long with_images = 0;
    for (long i = 0; i < rows;) {
        int n = 0;
        for (; n < BATCH && i < rows; n++, i++) {
            ad_reject *r = &batch[n];
            memset(r, 0, sizeof *r);
            int64_t ms = (int64_t)((double)i / rows * span * 1000);
            ad_utc_format(start + ms / 1000, (int)(ms % 1000), r->ts);
            snprintf(r->line, sizeof r->line, "bench");
            snprintf(r->camera, sizeof r->camera, "/dev/video0");
            r->frame_seq = (uint64_t)i * 77;
            r->threshold = 0.5;
            r->score = 0.5 + 0.001 - 0.1 * log(1 - ad_rng_uniform(&rng));
            r->box_w = 4 + (int)ad_rng_below(&rng, (uint32_t)side / 4);
            r->box_h = 4 + (int)ad_rng_below(&rng, (uint32_t)side / 4);
            r->box_x = (int)ad_rng_below(&rng, (uint32_t)(side - r->box_w));
            r->box_y = (int)ad_rng_below(&rng, (uint32_t)(side - r->box_h));
            r->area = (long)r->box_w * r->box_h / 2;
            snprintf(r->model_sha256, sizeof r->model_sha256, "%s", SHA);
            if (i >= rows - images) {
                ad_image frame = {0}, heat = {0};
                make_images(&frame, &heat, &parts[i % nparts], side, &rng, r->box_x, r->box_y,
                            r->box_w, r->box_h);
                r->frame = &frame;
                r->heatmap = &heat;
                die_if(ad_store_save_images(st, r, err, sizeof err), err);
                r->frame = r->heatmap = NULL;
                ad_image_free(&frame);
                ad_image_free(&heat);
                with_images++;
            } else if (i % 2) {
                /* retention took the files: the row keeps the paths */
                snprintf(r->image_path, sizeof r->image_path, "%s/gone/%ld-frame.png", image_dir, i);
                snprintf(r->heatmap_path, sizeof r->heatmap_path, "%s/gone/%ld-heatmap.png",
                         image_dir, i);
            }
            ptrs[n] = r;
        }
        die_if(ad_store_insert_rejects(st, ptrs, (size_t)n, err, sizeof err), err);
    }
    printf("report_log: %s: %ld rejects over %ld days (%ld with %dx%d images) in %.1f s\n", db,
           rows, days, with_images, side, side, ad_now_sec() - t0);
    free(batch);
    free(ptrs);
    for (int i = 0; i < nparts; i++) ad_image_free(&parts[i]);
    free(parts);
    ad_store_close(st);
    return 0;
}
