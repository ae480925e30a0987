/* Synthetic "parts" for tests and demos: round turned metal faces with a
 * centre bore on a dark fixture plate, and four defect kinds with
 * ground-truth masks, written in the MVTec AD layout.
 *
 *   gen_fixtures [--seed N] OUTDIR    -> OUTDIR/parts, OUTDIR/parts_rgb, OUTDIR/replay,
 *                                        OUTDIR/line (a station's replays with truth.csv),
 *                                        OUTDIR/png (every PNG kind, corrupt and truncated files)
 *
 * Byte-for-byte reproducible: every image draws from its own RNG stream
 * seeded from (seed, dataset, split, index); only +, -, *, /, sqrt and floor
 * are used on doubles (our own sine and exponential, no libm transcendental
 * whose last bit may differ between libm builds or CPU paths), and the file
 * is compiled with floating-point contraction off. PNGs are encoded with
 * fixed settings by ad_png_encode. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include "anomalyd/image.h"
#include "anomalyd/util.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SEED 20261125u
#define PI 3.14159265358979323846
#define TWO_PI 6.28318530717958647692
#define LN2 0.69314718055994530942

/* ---- deterministic math ------------------------------------------------ */

static double det_sin(double x)
{
    double k = floor(x / TWO_PI + 0.5);
    x = x - k * TWO_PI;                       /* [-pi, pi] */
    if (x > PI / 2) x = PI - x;               /* sin(pi - x) = sin x */
    if (x < -PI / 2) x = -PI - x;
    double x2 = x * x, term = x, sum = x;
    for (int n = 1; n <= 8; n++) {
        term = -term * x2 / ((2.0 * n) * (2.0 * n + 1.0));
        sum += term;
    }
    return sum;
}

static double det_cos(double x) { return det_sin(x + PI / 2); }

static double det_exp(double x)
{
    if (x < -60.0) return 0.0;
    if (x > 60.0) x = 60.0;
    double k = floor(x / LN2 + 0.5);
    double r = x - k * LN2, term = 1.0, sum = 1.0;
    for (int n = 1; n <= 14; n++) {
        term = term * r / n;
        sum += term;
    }
    return ldexp(sum, (int)k);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double u01(ad_rng *r) { return (double)(ad_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }
static double urange(ad_rng *r, double lo, double hi) { return lo + (hi - lo) * u01(r); }
/* Approximately normal (Irwin-Hall of 4 uniforms, unit variance). */
static double gauss(ad_rng *r)
{
    return (u01(r) + u01(r) + u01(r) + u01(r) - 2.0) * 1.7320508075688772;
}

/* Value noise on an integer lattice, smoothstep-interpolated, in [0, 1). */
static double lattice(uint64_t salt, long ix, long iy)
{
    uint64_t h = mix64(salt ^ mix64((uint64_t)ix * 0x632be59bd9b4e019ULL ^ (uint64_t)iy));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static double vnoise(uint64_t salt, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    long ix = (long)fx, iy = (long)fy;
    double tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0 - 2.0 * tx);
    ty = ty * ty * (3.0 - 2.0 * ty);
    double a = lattice(salt, ix, iy), b = lattice(salt, ix + 1, iy);
    double c = lattice(salt, ix, iy + 1), d = lattice(salt, ix + 1, iy + 1);
    return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

/* ---- the part ----------------------------------------------------------- */

enum defect { DEF_NONE, DEF_SCRATCH, DEF_SPOT, DEF_CRACK, DEF_CHIP, DEF_COUNT };
static const char *const defect_names[DEF_COUNT] = {"good", "scratch", "spot", "crack",
                                                    "chipped_edge"};

typedef struct part {
    double cx, cy, radius, bore;      /* centre, outer radius, centre bore radius */
    double bright, grad, lx, ly;      /* base level, illumination gradient, light direction */
    double sheen, ring_amp, ring_period, ring_phase, vignette;
    double bg, bg_var;
    double tint[3], bg_tint[3];
    uint64_t salt_rings, salt_tex, salt_bg, salt_edge;
} part;

#define MAX_PATH_PTS 64
typedef struct defect_shape {
    enum defect kind;
    int npts;
    double px[MAX_PATH_PTS], py[MAX_PATH_PTS];   /* polyline for scratch / crack */
    int branch_from;                             /* crack: second polyline starts here */
    double half_width, amp;                      /* signed intensity change */
    double sx, sy, ax, ay, ra, rb;               /* spot: centre, axis, radii */
    double bx, by, brad;                         /* chip: bite centre and radius */
} defect_shape;

static void part_sample(part *p, ad_rng *r, int colour, double ox, double oy)
{
    p->cx = ox + 32.0 + urange(r, -2.5, 2.5);
    p->cy = oy + 32.0 + urange(r, -2.5, 2.5);
    p->radius = 25.5 + urange(r, -0.8, 0.8);
    p->bore = 5.0 + urange(r, -0.4, 0.4);
    p->bright = clampd(150.0 + 8.0 * gauss(r), 128.0, 172.0);
    p->grad = urange(r, 8.0, 18.0);
    double a = urange(r, 0.0, TWO_PI);
    p->lx = det_cos(a);
    p->ly = det_sin(a);
    p->sheen = urange(r, 6.0, 13.0);
    p->ring_amp = urange(r, 3.0, 5.5);
    p->ring_period = urange(r, 3.0, 4.2);
    p->ring_phase = urange(r, 0.0, TWO_PI);
    p->vignette = urange(r, 4.0, 10.0);
    p->bg = clampd(34.0 + 4.0 * gauss(r), 24.0, 44.0);
    p->bg_var = urange(r, 3.0, 6.0);
    if (colour) {
        /* Brass-like part on a dark slate plate; the tint varies a little. */
        p->tint[0] = 1.06 + urange(r, -0.02, 0.02);
        p->tint[1] = 0.93 + urange(r, -0.02, 0.02);
        p->tint[2] = 0.62 + urange(r, -0.03, 0.03);
        p->bg_tint[0] = 0.88;
        p->bg_tint[1] = 0.97;
        p->bg_tint[2] = 1.12;
    } else {
        for (int i = 0; i < 3; i++) p->tint[i] = p->bg_tint[i] = 1.0;
    }
    p->salt_rings = ad_rng_u64(r);
    p->salt_tex = ad_rng_u64(r);
    p->salt_bg = ad_rng_u64(r);
    p->salt_edge = ad_rng_u64(r);
}

/* Distance from (x, y) to segment (ax, ay)-(bx, by). */
static double seg_dist(double x, double y, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0.0;
    t = clampd(t, 0.0, 1.0);
    double ex = x - (ax + t * dx), ey = y - (ay + t * dy);
    return sqrt(ex * ex + ey * ey);
}

static double path_dist(const defect_shape *d, double x, double y)
{
    double best = 1e9;
    for (int i = 0; i + 1 < d->npts; i++) {
        if (i + 1 == d->branch_from) continue;   /* the branch is a separate polyline */
        double s = seg_dist(x, y, d->px[i], d->py[i], d->px[i + 1], d->py[i + 1]);
        if (s < best) best = s;
    }
    return best;
}

/* A random point on the part's face, between the bore and the rim. */
static void face_point(const part *p, ad_rng *r, double rmin_pad, double rmax_pad, double *x,
                       double *y)
{
    double a = urange(r, 0.0, TWO_PI);
    double rr = urange(r, p->bore + rmin_pad, p->radius - rmax_pad);
    *x = p->cx + rr * det_cos(a);
    *y = p->cy + rr * det_sin(a);
}

static void defect_sample(defect_shape *d, const part *p, ad_rng *r, enum defect kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->branch_from = -1;
    switch (kind) {
    case DEF_SCRATCH: {
        /* Slightly curved thin line (quadratic Bezier), mostly bright. */
        double x0, y0;
        face_point(p, r, 3.0, 4.0, &x0, &y0);
        double a = urange(r, 0.0, TWO_PI), len = urange(r, 12.0, 22.0);
        double x2 = x0 + len * det_cos(a), y2 = y0 + len * det_sin(a);
        double bend = urange(r, -3.0, 3.0);
        double mx = (x0 + x2) / 2 - bend * det_sin(a), my = (y0 + y2) / 2 + bend * det_cos(a);
        d->npts = 17;
        for (int i = 0; i < d->npts; i++) {
            double t = i / 16.0, u = 1.0 - t;
            d->px[i] = u * u * x0 + 2 * u * t * mx + t * t * x2;
            d->py[i] = u * u * y0 + 2 * u * t * my + t * t * y2;
        }
        d->half_width = urange(r, 0.55, 0.95);
        d->amp = urange(r, 26.0, 42.0) * (u01(r) < 0.7 ? 1.0 : -1.0);
        break;
    }
    case DEF_SPOT: {
        face_point(p, r, 4.0, 5.0, &d->sx, &d->sy);
        double a = urange(r, 0.0, PI);
        d->ax = det_cos(a);
        d->ay = det_sin(a);
        d->ra = urange(r, 2.0, 4.2);
        d->rb = d->ra * urange(r, 0.55, 1.0);
        d->amp = urange(r, 30.0, 50.0) * (u01(r) < 0.65 ? -1.0 : 1.0);
        break;
    }
    case DEF_CRACK: {
        /* Jagged random walk, dark, with an optional short branch. */
        double x, y;
        face_point(p, r, 3.0, 3.0, &x, &y);
        double heading = urange(r, 0.0, TWO_PI);
        int n = 12 + (int)ad_rng_below(r, 8);
        d->npts = 0;
        for (int i = 0; i <= n; i++) {
            d->px[d->npts] = x;
            d->py[d->npts] = y;
            d->npts++;
            heading += urange(r, -0.7, 0.7);
            double step = urange(r, 1.2, 2.0);
            x += step * det_cos(heading);
            y += step * det_sin(heading);
        }
        if (u01(r) < 0.5) {
            int from = 3 + (int)ad_rng_below(r, (uint32_t)(n - 5));
            double bxp = d->px[from], byp = d->py[from];
            double bh = heading + urange(r, 0.8, 1.6) * (u01(r) < 0.5 ? 1 : -1);
            d->branch_from = d->npts;
            int m = 4 + (int)ad_rng_below(r, 4);
            for (int i = 0; i <= m && d->npts < MAX_PATH_PTS; i++) {
                d->px[d->npts] = bxp;
                d->py[d->npts] = byp;
                d->npts++;
                bh += urange(r, -0.6, 0.6);
                bxp += 1.5 * det_cos(bh);
                byp += 1.5 * det_sin(bh);
            }
        }
        d->half_width = urange(r, 0.45, 0.75);
        d->amp = -urange(r, 45.0, 70.0);
        break;
    }
    case DEF_CHIP: {
        double a = urange(r, 0.0, TWO_PI);
        d->brad = urange(r, 3.5, 6.0);
        double reach = p->radius + d->brad * urange(r, 0.15, 0.45);
        d->bx = p->cx + reach * det_cos(a);
        d->by = p->cy + reach * det_sin(a);
        break;
    }
    default: break;
    }
}

/* Renders one part (with optional defect) into an image of size w x h with
 * c channels, and the defect mask (if non-NULL) as 0/255. Returns the
 * number of mask pixels. */
static int render(ad_image *im, ad_image *mask, const part *p, const defect_shape *d,
                  ad_rng *r)
{
    int w = im->w, h = im->h, c = im->c, n_mask = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double fx = x + 0.5, fy = y + 0.5;
            double dx = fx - p->cx, dy = fy - p->cy, dist = sqrt(dx * dx + dy * dy);
            double nx = dist > 1e-9 ? dx / dist : 0.0, ny = dist > 1e-9 ? dy / dist : 0.0;
            double ndotl = nx * p->lx + ny * p->ly;

            /* Fixture plate: dark, blotchy, darker in the part's shadow. */
            double bg = p->bg + p->bg_var * (2.0 * vnoise(p->salt_bg, fx / 7.0, fy / 7.0) - 1.0) +
                        1.5 * (2.0 * vnoise(p->salt_bg ^ 1, fx / 2.0, fy / 2.0) - 1.0);
            double out = dist - p->radius;
            if (out > 0) bg -= 10.0 * det_exp(-out * out / 10.0) * (0.6 - 0.4 * ndotl);

            /* Turned face: concentric tool marks whose strength varies ring to
             * ring, a cos(2 theta) sheen, a gradient, and fine texture. */
            double ringmod = 0.55 + 0.9 * vnoise(p->salt_rings, dist / 3.0, 0.5);
            double face = p->bright + p->grad * (dx * p->lx + dy * p->ly) / p->radius -
                          p->vignette * (dist / p->radius) * (dist / p->radius) +
                          p->sheen * (2.0 * ndotl * ndotl - 1.0) +
                          p->ring_amp * ringmod *
                              det_sin(TWO_PI * dist / p->ring_period + p->ring_phase) +
                          3.0 * (2.0 * vnoise(p->salt_rings ^ 7, dist, 2.5) - 1.0) +
                          2.0 * (2.0 * vnoise(p->salt_tex, fx / 3.0, fy / 3.0) - 1.0);
            /* Chamfers at the rim and the bore catch the light on one side. */
            double rim = clampd(1.0 - (p->radius - dist) / 2.5, 0.0, 1.0);
            face += rim * (10.0 + 22.0 * ndotl);
            double bore_edge = clampd(1.0 - (dist - p->bore) / 1.8, 0.0, 1.0);
            face += bore_edge * (8.0 - 18.0 * ndotl);

            double cov = clampd(p->radius - dist + 0.5, 0.0, 1.0);
            double hole = clampd(p->bore - dist + 0.5, 0.0, 1.0);
            double in_mask = 0.0, delta = 0.0;
            double tint_shift[3] = {1.0, 1.0, 1.0};

            if (d && d->kind == DEF_CHIP) {
                double bdx = fx - d->bx, bdy = fy - d->by;
                double bdist = sqrt(bdx * bdx + bdy * bdy);
                double rough = d->brad + 1.3 * (vnoise(p->salt_edge, fx / 1.7, fy / 1.7) - 0.5);
                double bite = clampd(rough - bdist + 0.5, 0.0, 1.0);
                /* Fresh fracture just inside the bite's edge is brighter metal. */
                double fract = clampd(1.0 - (bdist - rough) / 1.5, 0.0, 1.0) * (1.0 - bite);
                face += fract * 24.0;
                if (bite > 0.5 && cov > 0.5) in_mask = 1.0;
                if (fract > 0.3 && cov > 0.5) in_mask = 1.0;
                cov *= 1.0 - bite;
                bg -= 6.0 * bite;   /* the chip's own shadow on the plate */
            } else if (d && (d->kind == DEF_SCRATCH || d->kind == DEF_CRACK)) {
                double pd = path_dist(d, fx, fy);
                double prof = clampd(1.0 - pd / (d->half_width + 0.5), 0.0, 1.0);
                double solid = cov * (1.0 - hole);
                delta = d->amp * prof * solid;
                if (d->kind == DEF_SCRATCH) {
                    /* Scratches cut through the tint to bare, whiter metal. */
                    tint_shift[2] = 1.0 + 0.5 * prof;
                }
                if (pd < d->half_width + 1.0 && solid > 0.5) in_mask = 1.0;
            } else if (d && d->kind == DEF_SPOT) {
                double sx = fx - d->sx, sy = fy - d->sy;
                double u = (sx * d->ax + sy * d->ay) / d->ra;
                double v = (-sx * d->ay + sy * d->ax) / d->rb;
                double q2 = u * u + v * v;
                q2 *= 1.0 + 0.35 * (vnoise(p->salt_edge, fx / 1.5, fy / 1.5) - 0.5);
                double prof = det_exp(-1.6 * q2 * q2);
                double solid = cov * (1.0 - hole);
                delta = d->amp * prof * solid;
                if (d->amp < 0) {   /* a stain: reddish-brown in colour */
                    tint_shift[0] = 1.0 - 0.45 * prof;
                    tint_shift[2] = 1.0 + 0.25 * prof;
                }
                if (prof > 0.25 && solid > 0.5) in_mask = 1.0;
            }
            cov *= 1.0 - hole;
            bg = hole > 0 ? bg * (1.0 - hole) + (p->bg - 8.0) * hole : bg;

            double shared_noise = 1.6 * gauss(r);
            for (int ch = 0; ch < c; ch++) {
                double fv = face * p->tint[ch] + delta * tint_shift[ch] *
                                                     (delta > 0 ? 1.0 : p->tint[ch]);
                double bv = bg * p->bg_tint[ch];
                double v = bv + (fv - bv) * cov + shared_noise + (c == 3 ? 1.0 * gauss(r) : 0.0);
                im->px[((size_t)y * w + x) * c + ch] = (uint8_t)floor(clampd(v, 0.0, 255.0) + 0.5);
            }
            if (mask) {
                mask->px[(size_t)y * w + x] = in_mask > 0 ? 255 : 0;
                n_mask += in_mask > 0;
            }
        }
    }
    return n_mask;
}

/* ---- datasets ------------------------------------------------------------ */

static uint64_t stream_seed(uint64_t seed, int dataset, int split, int index)
{
    return mix64(mix64(mix64(seed ^ (uint64_t)dataset) ^ (uint64_t)split) ^ (uint64_t)index);
}

static int write_bytes(const char *dir, const char *name, const uint8_t *data, size_t len);

static int write_png(const char *dir, const char *name, const ad_image *im)
{
    char err[AD_ERRLEN];
    if (ad_mkdirs(dir, 0755, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s\n", err);
        return -1;
    }
    /* Level 9: smallest files; the fixtures are written once. */
    uint8_t *data = NULL;
    size_t len = 0;
    if (ad_png_encode_level(im, 9, &data, &len, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s/%s: %s\n", dir, name, err);
        return -1;
    }
    int rc = write_bytes(dir, name, data, len);
    free(data);
    return rc;
}

/* One image (and mask) of a part, drawing defects until one is visible
 * enough (a mask of at least min_mask pixels inside the frame). */
static int make_sample(ad_image *im, ad_image *mask, uint64_t seed, int canvas, int c,
                       double offset, enum defect kind)
{
    ad_rng r;
    ad_rng_seed(&r, seed);
    part p;
    part_sample(&p, &r, c == 3, offset, offset);
    if (ad_image_alloc(im, canvas, canvas, c) != 0) return -1;
    if (kind == DEF_NONE) {
        render(im, NULL, &p, NULL, &r);
        return 0;
    }
    if (ad_image_alloc(mask, canvas, canvas, 1) != 0) return -1;
    for (int attempt = 0; attempt < 50; attempt++) {
        defect_shape d;
        defect_sample(&d, &p, &r, kind);
        ad_rng noise = r;   /* same sensor noise for every attempt */
        if (render(im, mask, &p, &d, &noise) >= 8) {
            r = noise;
            return 0;
        }
    }
    fprintf(stderr, "gen_fixtures: could not place a visible %s defect\n", defect_names[kind]);
    return -1;
}

typedef struct dataset_spec {
    const char *name;
    int id, c, n_train, n_test_good, n_per_defect;
} dataset_spec;

static int make_mvtec(const char *outdir, uint64_t seed, const dataset_spec *s)
{
    char dir[4096], name[64];
    ad_image im = {0}, mask = {0};
    int rc = -1;
    for (int split = 0; split < 2 + DEF_CHIP; split++) {
        enum defect kind = split <= 1 ? DEF_NONE : (enum defect)(split - 1);
        int count = split == 0 ? s->n_train : split == 1 ? s->n_test_good : s->n_per_defect;
        if (split == 0) snprintf(dir, sizeof dir, "%s/%s/train/good", outdir, s->name);
        else snprintf(dir, sizeof dir, "%s/%s/test/%s", outdir, s->name, defect_names[kind]);
        for (int i = 0; i < count; i++) {
            if (make_sample(&im, &mask, stream_seed(seed, s->id, split, i), 64, s->c, 0.0,
                            kind) != 0)
                goto done;
            snprintf(name, sizeof name, "%03d.png", i);
            if (write_png(dir, name, &im) != 0) goto done;
            if (kind != DEF_NONE) {
                char mdir[4096];
                snprintf(mdir, sizeof mdir, "%s/%s/ground_truth/%s", outdir, s->name,
                         defect_names[kind]);
                snprintf(name, sizeof name, "%03d_mask.png", i);
                if (write_png(mdir, name, &mask) != 0) goto done;
            }
            ad_image_free(&im);
            ad_image_free(&mask);
        }
    }
    rc = 0;
done:
    ad_image_free(&im);
    ad_image_free(&mask);
    return rc;
}

/* 80x80 gray frames, the part inside ROI x=8 y=8 64x64, a few defective. */
static int make_replay(const char *outdir, uint64_t seed)
{
    enum { N_FRAMES = 24 };
    static const struct { int frame; enum defect kind; } bad[] = {
        {5, DEF_SCRATCH}, {11, DEF_SPOT}, {16, DEF_CRACK}, {21, DEF_CHIP}};
    char dir[4096], path[4096], name[64], err[AD_ERRLEN];
    snprintf(dir, sizeof dir, "%s/replay/frames", outdir);
    snprintf(path, sizeof path, "%s/replay/labels.csv", outdir);
    if (ad_mkdirs(dir, 0755, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s\n", err);
        return -1;
    }
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "gen_fixtures: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("file,defect\n", csv);
    int rc = -1;
    ad_image im = {0}, mask = {0};
    for (int i = 0; i < N_FRAMES; i++) {
        enum defect kind = DEF_NONE;
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
            if (bad[b].frame == i) kind = bad[b].kind;
        if (make_sample(&im, &mask, stream_seed(seed, 3, 0, i), 80, 1, 8.0, kind) != 0)
            goto done;
        snprintf(name, sizeof name, "frame_%04d.png", i);
        if (write_png(dir, name, &im) != 0) goto done;
        fprintf(csv, "%s,%s\n", name, defect_names[kind]);
        ad_image_free(&im);
        ad_image_free(&mask);
    }
    rc = 0;
done:
    ad_image_free(&im);
    ad_image_free(&mask);
    if (fclose(csv) != 0 && rc == 0) {
        fprintf(stderr, "gen_fixtures: %s: cannot write: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* ---- a station on the line: replays for the part trigger ---------------
 *
 * One fixed station (the same plate and light in every sequence) seen by an
 * 80x80 gray camera, the ROI at x=8 y=8 64x64 as in the replay above. Parts
 * slide in from the left, may rest at the ROI's centre, and slide out to the
 * right. Each sequence folder holds frames/ and truth.csv: one row per
 * part with its defect and the frames it is in view, at rest and leaving
 * (rests_from = -1: it never comes to rest). The model's rest position is
 * the parts' centre (offset 8), where the training parts sit. */

#define LINE_STEP 8   /* pixels a part moves per frame while sliding */

typedef struct line_part {
    enum defect kind;
    int enter, rest, leave;       /* first frame of: sliding in, at rest, sliding out */
    int rest_frames;              /* 0: slides through without stopping */
} line_part;

typedef struct line_seq {
    const char *name;
    int frames;
    line_part parts[4];
    int nparts;
} line_seq;

static void shift_defect(defect_shape *d, double dx, double dy)
{
    for (int i = 0; i < d->npts; i++) d->px[i] += dx, d->py[i] += dy;
    d->sx += dx, d->sy += dy;
    d->bx += dx, d->by += dy;
}

/* The x offset of part q at frame f from its rest position, or a huge one
 * when it is out of view. Slides in over 64/LINE_STEP frames. */
static double line_offset(const line_part *q, int f)
{
    int slide = 64 / LINE_STEP;
    if (q->rest_frames == 0) { /* slides straight through */
        int t = f - q->enter;
        return t < 0 || t > 2 * slide ? 1e4 : (double)(t - slide) * LINE_STEP;
    }
    if (f < q->enter || f >= q->leave + slide + 1) return 1e4;
    if (f < q->rest) return -(double)(q->rest - f) * LINE_STEP;
    if (f < q->leave) return 0.0;
    return (double)(f - q->leave + 1) * LINE_STEP;
}

static int make_line_seq(const char *outdir, uint64_t seed, int index, const line_seq *s)
{
    char dir[4096], err[AD_ERRLEN];
    snprintf(dir, sizeof dir, "%s/line/%s/frames", outdir, s->name);
    if (ad_mkdirs(dir, 0755, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s\n", err);
        return -1;
    }
    /* the station: its plate and light, the same in every sequence */
    ad_rng sr;
    ad_rng_seed(&sr, stream_seed(seed, 5, 0, 0));
    part station;
    part_sample(&station, &sr, 0, 8.0, 8.0);
    part parts[4];
    defect_shape defects[4];
    for (int k = 0; k < s->nparts; k++) {
        ad_rng r;
        ad_rng_seed(&r, stream_seed(seed, 5, 1 + index, k));
        part_sample(&parts[k], &r, 0, 8.0, 8.0);
        parts[k].bg = station.bg;
        parts[k].bg_var = station.bg_var;
        parts[k].salt_bg = station.salt_bg;
        memset(&defects[k], 0, sizeof defects[k]);
        if (s->parts[k].kind != DEF_NONE) defect_sample(&defects[k], &parts[k], &r, s->parts[k].kind);
    }
    ad_image im = {0};
    if (ad_image_alloc(&im, 80, 80, 1) != 0) return -1;
    int rc = 0;
    for (int f = 0; f < s->frames && rc == 0; f++) {
        ad_rng noise;
        ad_rng_seed(&noise, stream_seed(seed, 5, 100 + index, f));
        /* the part furthest in front (the one arriving) is drawn last, over the one leaving */
        part empty = station;
        empty.cx = empty.cy = -1e4;
        ad_image layer = {0};
        render(&im, NULL, &empty, NULL, &noise);
        for (int k = 0; k < s->nparts; k++) {
            double dx = line_offset(&s->parts[k], f);
            if (dx > 100 || dx < -100) continue;
            part p = parts[k];
            p.cx += dx;
            defect_shape d = defects[k];
            shift_defect(&d, dx, 0.0);
            ad_rng pn = noise;
            if (ad_image_alloc(&layer, 80, 80, 1) != 0) {
                rc = -1;
                break;
            }
            render(&layer, NULL, &p, d.kind == DEF_NONE ? NULL : &d, &pn);
            /* keep the part's own pixels (within its radius) over what is there */
            for (int y = 0; y < 80; y++)
                for (int x = 0; x < 80; x++) {
                    double ex = x + 0.5 - p.cx, ey = y + 0.5 - p.cy;
                    if (ex * ex + ey * ey <= (p.radius + 4.0) * (p.radius + 4.0))
                        im.px[y * 80 + x] = layer.px[y * 80 + x];
                }
            ad_image_free(&layer);
        }
        char name[64];
        snprintf(name, sizeof name, "frame_%04d.png", f);
        if (rc == 0) rc = write_png(dir, name, &im);
    }
    ad_image_free(&im);
    if (rc != 0) return rc;

    char path[4200];
    snprintf(path, sizeof path, "%s/line/%s/truth.csv", outdir, s->name);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "gen_fixtures: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("part,defect,enters,rests_from,rests_to,gone_at\n", csv);
    for (int k = 0; k < s->nparts; k++) {
        const line_part *q = &s->parts[k];
        int slide = 64 / LINE_STEP;
        int gone = q->rest_frames ? q->leave + slide + 1 : q->enter + 2 * slide + 1;
        fprintf(csv, "%d,%s,%d,%d,%d,%d\n", k + 1, defect_names[q->kind], q->enter,
                q->rest_frames ? q->rest : -1, q->rest_frames ? q->leave - 1 : -1, gone);
    }
    if (fclose(csv) != 0) {
        fprintf(stderr, "gen_fixtures: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A part sliding in at frame e, resting n frames: rest = e + 8, leave = rest + n. */
#define LP(kind, e, n) {kind, e, (e) + 64 / LINE_STEP, (e) + 64 / LINE_STEP + (n), n}

static int make_line_replays(const char *outdir, uint64_t seed)
{
    static const line_seq seqs[] = {
        {"empty", 20, {{0}}, 0},
        {"arrive_rest_leave", 44, {LP(DEF_NONE, 4, 12)}, 1},
        /* the second part enters while the first leaves: the ROI is never empty */
        {"back_to_back", 60, {LP(DEF_NONE, 2, 12), LP(DEF_NONE, 22, 12)}, 2},
        {"never_settles", 26, {{DEF_NONE, 4, 0, 0, 0}}, 1},
        {"defect_rests_60", 90, {LP(DEF_SCRATCH, 4, 60)}, 1},
        /* the end-to-end mix: good and defective parts with gaps */
        {"mixed", 130, {LP(DEF_NONE, 2, 10), LP(DEF_SPOT, 32, 10), LP(DEF_NONE, 62, 10), LP(DEF_CRACK, 92, 10)}, 4},
    };
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++)
        if (make_line_seq(outdir, seed, (int)i, &seqs[i]) != 0) return -1;
    return 0;
}

/* ---- PNG samples of every kind, for the loader's tests and fuzz corpus ---
 *
 * Pixel (x, y) of channel ch holds sample_value(x, y, ch) mod 2^depth;
 * palette images hold index sample_value(x, y, 0) mod 2^depth into
 * sample_palette. tests/test_image.c computes the same values independently
 * and checks the decoded pixels. */

#define SAMPLE_W 13
#define SAMPLE_H 7

static uint32_t sample_value(int x, int y, int ch)
{
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)ch * 83492791u;
    h *= 2654435761u;
    return h >> 8;
}

static void sample_palette(int i, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(i * 53 + 17);
    rgb[1] = (uint8_t)(i * 101 + 3);
    rgb[2] = (uint8_t)(i * 29 + 200);
}

typedef struct png_kind {
    const char *name;
    int color_type, depth, interlace, trns;
} png_kind;

static const png_kind png_kinds[] = {
    {"gray1", PNG_COLOR_TYPE_GRAY, 1, 0, 0},        {"gray2", PNG_COLOR_TYPE_GRAY, 2, 0, 0},
    {"gray4", PNG_COLOR_TYPE_GRAY, 4, 0, 0},        {"gray8", PNG_COLOR_TYPE_GRAY, 8, 0, 0},
    {"gray16", PNG_COLOR_TYPE_GRAY, 16, 0, 0},      {"gray8_trns", PNG_COLOR_TYPE_GRAY, 8, 0, 1},
    {"graya8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0}, {"graya16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0},
    {"rgb8", PNG_COLOR_TYPE_RGB, 8, 0, 0},          {"rgb16", PNG_COLOR_TYPE_RGB, 16, 0, 0},
    {"rgb8_trns", PNG_COLOR_TYPE_RGB, 8, 0, 1},     {"rgba8", PNG_COLOR_TYPE_RGBA, 8, 0, 0},
    {"rgba16", PNG_COLOR_TYPE_RGBA, 16, 0, 0},      {"pal1", PNG_COLOR_TYPE_PALETTE, 1, 0, 0},
    {"pal2", PNG_COLOR_TYPE_PALETTE, 2, 0, 0},      {"pal4", PNG_COLOR_TYPE_PALETTE, 4, 0, 0},
    {"pal8", PNG_COLOR_TYPE_PALETTE, 8, 0, 0},      {"pal4_trns", PNG_COLOR_TYPE_PALETTE, 4, 0, 1},
    {"pal8_trns", PNG_COLOR_TYPE_PALETTE, 8, 0, 1}, {"rgb8_adam7", PNG_COLOR_TYPE_RGB, 8, 1, 0},
    {"gray16_adam7", PNG_COLOR_TYPE_GRAY, 16, 1, 0}, {"pal2_adam7", PNG_COLOR_TYPE_PALETTE, 2, 1, 1},
    {"gray2_trns", PNG_COLOR_TYPE_GRAY, 2, 0, 1},
};

static void sample_write_cb(png_structp png, png_bytep in, size_t n)
{
    FILE *f = png_get_io_ptr(png);
    if (fwrite(in, 1, n, f) != n) png_error(png, "write failed");
}

static void sample_flush_cb(png_structp png) { (void)png; }

static void sample_error_cb(png_structp png, png_const_charp msg)
{
    fprintf(stderr, "gen_fixtures: libpng: %s\n", msg);
    png_longjmp(png, 1);
}

/* Writes one sample kind with libpng directly (our own writer only makes
 * 8-bit gray and RGB). */
static int write_png_kind(const char *path, const png_kind *k)
{
    int chans = k->color_type == PNG_COLOR_TYPE_GRAY || k->color_type == PNG_COLOR_TYPE_PALETTE ? 1
                : k->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                : k->color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
    static uint8_t buf[SAMPLE_H][SAMPLE_W * 8];   /* up to RGBA 16-bit */
    png_bytep rows[SAMPLE_H];
    memset(buf, 0, sizeof buf);
    uint32_t maxv = k->depth == 16 ? 65535u : (1u << k->depth) - 1;
    for (int y = 0; y < SAMPLE_H; y++) {
        rows[y] = buf[y];
        for (int x = 0; x < SAMPLE_W; x++) {
            for (int ch = 0; ch < chans; ch++) {
                uint32_t v = sample_value(x, y, ch) & maxv;
                if (k->depth == 16) {
                    buf[y][(x * chans + ch) * 2] = (uint8_t)(v >> 8);
                    buf[y][(x * chans + ch) * 2 + 1] = (uint8_t)v;
                } else if (k->depth == 8) {
                    buf[y][x * chans + ch] = (uint8_t)v;
                } else {   /* packed, most significant bits first */
                    int bit = x * k->depth;
                    buf[y][bit / 8] |= (uint8_t)(v << (8 - k->depth - bit % 8));
                }
            }
        }
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "gen_fixtures: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, sample_error_cb, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_set_write_fn(png, f, sample_write_cb, sample_flush_cb);
    png_set_compression_level(png, 9);
    png_set_IHDR(png, info, SAMPLE_W, SAMPLE_H, k->depth, k->color_type,
                 k->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
    if (k->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        int n = 1 << k->depth;
        for (int i = 0; i < n; i++) {
            uint8_t c[3];
            sample_palette(i, c);
            pal[i].red = c[0];
            pal[i].green = c[1];
            pal[i].blue = c[2];
        }
        png_set_PLTE(png, info, pal, n);
        if (k->trns) {
            png_byte alpha[5] = {0, 64, 128, 200, 255};
            png_set_tRNS(png, info, alpha, n < 5 ? n : 5, NULL);
        }
    } else if (k->trns) {
        png_color_16 key = {0};
        key.gray = k->depth < 8 ? 1 : 7;
        key.red = 1;
        key.green = 2;
        key.blue = 3;
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_write_info(png, info);
    if (k->interlace) {
        int passes = png_set_interlace_handling(png);
        for (int p = 0; p < passes; p++) png_write_rows(png, rows, SAMPLE_H);
    } else {
        png_write_image(png, rows);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        fprintf(stderr, "gen_fixtures: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends a chunk with a correct CRC; returns the new length. */
static size_t put_chunk(uint8_t *buf, size_t len, const char *type, const uint8_t *data,
                        uint32_t n)
{
    put_be32(buf + len, n);
    memcpy(buf + len + 4, type, 4);
    if (n) memcpy(buf + len + 8, data, n);
    put_be32(buf + len + 8 + n, crc32_png(buf + len + 4, n + 4));
    return len + 12 + n;
}

static int write_bytes(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char path[4096 + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "gen_fixtures: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A hand-made PNG whose IHDR says w x h (gray, 8-bit unless depth given)
 * followed by a small valid IDAT and IEND. */
static size_t header_only_png(uint8_t *buf, uint32_t w, uint32_t h, uint8_t depth,
                              uint8_t color_type)
{
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    /* zlib stream of 2 bytes {0, 0}: one filter byte and one pixel. */
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
    uint8_t ihdr[13];
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = depth;
    ihdr[9] = color_type;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    memcpy(buf, sig, 8);
    size_t len = put_chunk(buf, 8, "IHDR", ihdr, 13);
    len = put_chunk(buf, len, "IDAT", idat, sizeof idat);
    return put_chunk(buf, len, "IEND", NULL, 0);
}

static int make_png_samples(const char *outdir)
{
    char dir[4096], path[4096 + 64], err[AD_ERRLEN];
    snprintf(dir, sizeof dir, "%s/png", outdir);
    if (ad_mkdirs(dir, 0755, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < sizeof png_kinds / sizeof png_kinds[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.png", dir, png_kinds[i].name);
        if (write_png_kind(path, &png_kinds[i]) != 0) return -1;
    }

    /* Broken files, all derived from rgb8.png. */
    uint8_t *good = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/rgb8.png", dir);
    if (ad_read_file(path, 1 << 20, &good, &len, err, sizeof err) != 0) {
        fprintf(stderr, "gen_fixtures: %s\n", err);
        return -1;
    }
    uint8_t *b = ad_xmalloc(len + 256);
    size_t idat = 8;   /* offset of the IDAT chunk */
    while (idat + 8 <= len && memcmp(good + idat + 4, "IDAT", 4) != 0)
        idat += 12 + (size_t)(good[idat] << 24 | good[idat + 1] << 16 | good[idat + 2] << 8 |
                              good[idat + 3]);
    int rc = -1;
    if (idat + 8 > len) goto done;
    uint32_t idat_len = (uint32_t)good[idat] << 24 | (uint32_t)good[idat + 1] << 16 |
                        (uint32_t)good[idat + 2] << 8 | good[idat + 3];
    if (write_bytes(dir, "bad_empty.png", good, 0) != 0) goto done;
    memcpy(b, good, len);
    b[1] = 'J';
    if (write_bytes(dir, "bad_signature.png", b, len) != 0) goto done;
    memcpy(b, good, len);
    b[idat + 8 + idat_len / 2] ^= 0x55;   /* CRC now wrong */
    if (write_bytes(dir, "bad_idat_crc.png", b, len) != 0) goto done;
    memcpy(b, good, len);
    b[16 + 3] ^= 0x01;   /* width changed, IHDR CRC wrong */
    if (write_bytes(dir, "bad_ihdr_crc.png", b, len) != 0) goto done;
    /* Deflate data damaged but the CRC recomputed: only zlib can notice. */
    memcpy(b, good, len);
    for (uint32_t i = 2; i < idat_len; i += 3) b[idat + 8 + i] ^= 0xa5;
    put_be32(b + idat + 8 + idat_len, crc32_png(b + idat + 4, idat_len + 4));
    if (write_bytes(dir, "bad_zlib.png", b, len) != 0) goto done;
    if (write_bytes(dir, "truncated_in_signature.png", good, 5) != 0 ||
        write_bytes(dir, "truncated_in_ihdr.png", good, 20) != 0 ||
        write_bytes(dir, "truncated_in_idat.png", good, idat + 8 + idat_len / 2) != 0 ||
        write_bytes(dir, "truncated_no_iend.png", good, len - 12) != 0)
        goto done;
    size_t n = header_only_png(b, 20000, 20000, 8, 0);
    if (write_bytes(dir, "bad_huge_dims.png", b, n) != 0) goto done;
    n = header_only_png(b, 16385, 1, 8, 0);
    if (write_bytes(dir, "bad_too_wide.png", b, n) != 0) goto done;
    n = header_only_png(b, 16384, 16384, 8, 2);
    if (write_bytes(dir, "bad_max_dims_tiny_data.png", b, n) != 0) goto done;
    n = header_only_png(b, 0, 7, 8, 0);
    if (write_bytes(dir, "bad_zero_width.png", b, n) != 0) goto done;
    n = header_only_png(b, 1, 1, 3, 0);
    if (write_bytes(dir, "bad_bit_depth.png", b, n) != 0) goto done;
    n = header_only_png(b, 2, 2, 8, 0);   /* needs 6 bytes of data, holds 2 */
    if (write_bytes(dir, "bad_short_data.png", b, n) != 0) goto done;
    rc = 0;
done:
    if (rc != 0) fprintf(stderr, "gen_fixtures: could not derive broken PNG samples\n");
    free(good);
    free(b);
    return rc;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: gen_fixtures [--seed N] OUTDIR\n"
               "Writes OUTDIR/parts (gray), OUTDIR/parts_rgb (RGB) in the MVTec AD layout\n"
               "OUTDIR/replay (80x80 frames + labels.csv), OUTDIR/line (a station's\n"
               "replays for the part trigger, each with truth.csv) and OUTDIR/png (PNG samples of\n"
               "every kind, corrupt and truncated ones). Default seed %u.\n",
            DEFAULT_SEED);
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = DEFAULT_SEED;
    const char *outdir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return usage(stdout);
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end || end == argv[i]) {
                fprintf(stderr, "gen_fixtures: --seed needs a non-negative integer, got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' || outdir) {
            return usage(stderr);
        } else {
            outdir = argv[i];
        }
    }
    if (!outdir) return usage(stderr);
    static const dataset_spec parts = {"parts", 1, 1, 60, 16, 6};
    static const dataset_spec parts_rgb = {"parts_rgb", 2, 3, 30, 8, 4};
    if (make_mvtec(outdir, seed, &parts) != 0 || make_mvtec(outdir, seed, &parts_rgb) != 0 ||
        make_replay(outdir, seed) != 0 || make_line_replays(outdir, seed) != 0 ||
        make_png_samples(outdir) != 0)
        return 1;
    return 0;
}
