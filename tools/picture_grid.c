/* Lays PNG images out on a grid, each enlarged by a whole factor (nearest
 * neighbour, so the pixels stay visible), with white gaps: the README's
 * picture of what the daemon saves per reject, docs/heatmap-demo.png, made
 * from the demo's four rejects (ROIs on the first row, heat maps below):
 *   scripts/demo.sh
 *   build/release/tools/picture_grid docs/heatmap-demo.png 3 4 \
 *       build/demo/images/20??-??-??/[0-9]*-frame.png \
 *       build/demo/images/20??-??-??/[0-9]*-heatmap.png
 * Usage: picture_grid OUT.png SCALE COLUMNS IMAGE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/image.h"
#include "anomalyd/util.h"

#define GAP 4

int main(int argc, char **argv)
{
    if (argc < 5) {
        fputs("usage: picture_grid OUT.png SCALE COLUMNS IMAGE...\n", stderr);
        return 2;
    }
    int scale = atoi(argv[2]), cols = atoi(argv[3]), n = argc - 4;
    if (scale < 1 || scale > 16 || cols < 1 || cols > 64) {
        fputs("picture_grid: SCALE must be 1..16 and COLUMNS 1..64\n", stderr);
        return 2;
    }
    ad_image *in = calloc((size_t)n, sizeof *in);
    ad_image grid = {0};
    char err[AD_ERRLEN];
    int rc = 1, cell_w = 0, cell_h = 0;
    if (!in) abort();
    for (int i = 0; i < n; i++) {
        if (ad_png_read(argv[4 + i], 3, &in[i], err, sizeof err)) {
            fprintf(stderr, "picture_grid: %s\n", err);
            goto out;
        }
        if (in[i].w > cell_w) cell_w = in[i].w;
        if (in[i].h > cell_h) cell_h = in[i].h;
    }
    int rows = (n + cols - 1) / cols, used_cols = n < cols ? n : cols;
    int w = GAP + used_cols * (cell_w * scale + GAP), h = GAP + rows * (cell_h * scale + GAP);
    if (ad_image_alloc(&grid, w, h, 3)) {
        fprintf(stderr, "picture_grid: a %dx%d picture is too large\n", w, h);
        goto out;
    }
    memset(grid.px, 255, (size_t)w * h * 3);
    for (int i = 0; i < n; i++) {
        int x0 = GAP + (i % cols) * (cell_w * scale + GAP), y0 = GAP + (i / cols) * (cell_h * scale + GAP);
        for (int y = 0; y < in[i].h * scale; y++)
            for (int x = 0; x < in[i].w * scale; x++)
                memcpy(&grid.px[((size_t)(y0 + y) * w + x0 + x) * 3],
                       &in[i].px[((size_t)(y / scale) * in[i].w + x / scale) * 3], 3);
    }
    if (ad_png_write(argv[1], &grid, err, sizeof err)) {
        fprintf(stderr, "picture_grid: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < n; i++) ad_image_free(&in[i]);
    free(in);
    ad_image_free(&grid);
    return rc;
}
