/* The noise-prediction UNet: parameter table, scratch planning, forward and
 * backward. Layer arithmetic lives in the per-layer files (nn_layers.h); this
 * file only wires them together in the order of tests/reference/unet.py.
 *
 *   temb = Linear(SiLU(Linear(sinusoid(t))))               time_mlp.0, .2
 *   h = conv_in(x)
 *   down l: res_blocks ResBlocks (ch_{l-1} -> ch_l), skip_l = h,
 *           then a stride-2 3x3 conv (not after the last level)
 *   mid: two ResBlocks
 *   up l (last level first): h = cat(h, skip_l), res_blocks ResBlocks -> ch_l,
 *           then nearest 2x upsample + 3x3 conv (not at level 0)
 *   eps = conv_out(SiLU(GroupNorm(h)))
 *
 * ResBlock(x) = conv2(SiLU(GN2(conv1(SiLU(GN1(x))) + temb_proj))) + skip(x),
 * temb_proj = Linear(SiLU(temb)), skip a 1x1 conv when channels change. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/nn_layers.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

#define NONE ((size_t)-1)
#define MAX_PARAMS ((size_t)64 << 20)        /* 64 M floats = 256 MB */
#define MAX_SCRATCH_BYTES ((size_t)16 << 30) /* refuse plans above 16 GiB */

typedef struct resblock {
    int cin, cout;
    size_t n1g, n1b, c1w, c1b, tw, tb, n2g, n2b, c2w, c2b, skw, skb; /* offsets */
    /* planned activations; x is the input seen by the last forward */
    int h, w;
    const float *x;
    float *mean1, *rstd1, *a1, *h1, *mean2, *rstd2, *a2, *skip, *out, *tproj;
} resblock;

typedef struct conv_op {
    size_t w, b;
    int cin, cout, k, stride;
} conv_op;

struct ad_unet {
    ad_unet_hparams hp;
    int tdim;
    int ch[AD_MAX_LEVELS];
    ad_param_table table;
    float *params, *grads, *adam_m, *adam_v;

    size_t mlp0_w, mlp0_b, mlp2_w, mlp2_b, nout_g, nout_b;
    conv_op conv_in, conv_out, down[AD_MAX_LEVELS], up[AD_MAX_LEVELS];
    resblock *down_rb[AD_MAX_LEVELS], *up_rb[AD_MAX_LEVELS], mid[2];

    /* scratch: one allocation, carved by plan() */
    float *scratch;
    size_t scratch_cap;                   /* floats */
    bool res_training;                    /* scratch keeps every activation */
    int plan_n, plan_h, plan_w;           /* shape the pointers below are for */
    bool plan_training;
    int plan_threads;                     /* Winograd workspace is sized for these */
    bool have_forward;                    /* a training forward is ready for backward */
    const float *x_in;
    float *temb_sin, *temb_h, *temb_a, *temb, *temb_s, *d_temb_s, *d_temb, *d_temb_h, *d_tproj;
    float *x_conv_in;                     /* conv_in output */
    float *skips[AD_MAX_LEVELS], *downs[AD_MAX_LEVELS], *cats[AD_MAX_LEVELS];
    float *ups[AD_MAX_LEVELS], *upconvs[AD_MAX_LEVELS];
    float *nout_mean, *nout_rstd, *a_out;
    float *work;                          /* conv workspace */
    float *g[4];                          /* backward gradient buffers, max activation each */
    float *dskips[AD_MAX_LEVELS];
    size_t max_act;
    ad_unet_stats stats;
};

/* ---------------------------------------------------------------- params */

static void add_conv(ad_unet *u, conv_op *c, const char *prefix, int cin, int cout, int k, int stride)
{
    int ws[4] = {cout, cin, k, k};
    ad_param_table_add_pair(&u->table, prefix, 4, ws, cout, &c->w, &c->b);
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->stride = stride;
}

static void add_resblock(ad_unet *u, resblock *rb, const char *prefix, int cin, int cout)
{
    char p[64];
    conv_op c;
    memset(rb, 0, sizeof(*rb));
    rb->cin = cin;
    rb->cout = cout;
    int gs_in[1] = {cin}, gs_out[1] = {cout}, ts[2] = {cout, u->tdim};
    snprintf(p, sizeof(p), "%s.norm1", prefix);
    ad_param_table_add_pair(&u->table, p, 1, gs_in, cin, &rb->n1g, &rb->n1b);
    snprintf(p, sizeof(p), "%s.conv1", prefix);
    add_conv(u, &c, p, cin, cout, 3, 1);
    rb->c1w = c.w;
    rb->c1b = c.b;
    snprintf(p, sizeof(p), "%s.temb", prefix);
    ad_param_table_add_pair(&u->table, p, 2, ts, cout, &rb->tw, &rb->tb);
    snprintf(p, sizeof(p), "%s.norm2", prefix);
    ad_param_table_add_pair(&u->table, p, 1, gs_out, cout, &rb->n2g, &rb->n2b);
    snprintf(p, sizeof(p), "%s.conv2", prefix);
    add_conv(u, &c, p, cout, cout, 3, 1);
    rb->c2w = c.w;
    rb->c2b = c.b;
    rb->skw = rb->skb = NONE;
    if (cin != cout) {
        snprintf(p, sizeof(p), "%s.skip", prefix);
        add_conv(u, &c, p, cin, cout, 1, 1);
        rb->skw = c.w;
        rb->skb = c.b;
    }
}

/* Builds the whole tensor table; used for counting as well as creating. */
static void build_table(ad_unet *u)
{
    const ad_unet_hparams *hp = &u->hp;
    const int L = hp->num_levels, R = hp->res_blocks, base = hp->base_channels;
    char p[64];
    u->tdim = 4 * base;
    for (int l = 0; l < L; l++) u->ch[l] = base * hp->channel_mult[l];

    int s0[2] = {u->tdim, base}, s1[2] = {u->tdim, u->tdim};
    ad_param_table_add_pair(&u->table, "time_mlp.0", 2, s0, u->tdim, &u->mlp0_w, &u->mlp0_b);
    ad_param_table_add_pair(&u->table, "time_mlp.2", 2, s1, u->tdim, &u->mlp2_w, &u->mlp2_b);
    add_conv(u, &u->conv_in, "conv_in", hp->in_channels, base, 3, 1);
    int cur = base;
    for (int l = 0; l < L; l++) {
        u->down_rb[l] = ad_xcalloc((size_t)R, sizeof(resblock));
        for (int r = 0; r < R; r++) {
            snprintf(p, sizeof(p), "down.%d.res.%d", l, r);
            add_resblock(u, &u->down_rb[l][r], p, cur, u->ch[l]);
            cur = u->ch[l];
        }
        if (l < L - 1) {
            snprintf(p, sizeof(p), "down.%d.down", l);
            add_conv(u, &u->down[l], p, cur, cur, 3, 2);
        }
    }
    add_resblock(u, &u->mid[0], "mid.0", cur, cur);
    add_resblock(u, &u->mid[1], "mid.1", cur, cur);
    for (int l = L - 1; l >= 0; l--) {
        u->up_rb[l] = ad_xcalloc((size_t)R, sizeof(resblock));
        for (int r = 0; r < R; r++) {
            snprintf(p, sizeof(p), "up.%d.res.%d", l, r);
            add_resblock(u, &u->up_rb[l][r], p, r == 0 ? cur + u->ch[l] : u->ch[l], u->ch[l]);
        }
        cur = u->ch[l];
        if (l > 0) {
            snprintf(p, sizeof(p), "up.%d.up", l);
            add_conv(u, &u->up[l], p, cur, cur, 3, 1);
        }
    }
    int gs[1] = {cur};
    ad_param_table_add_pair(&u->table, "norm_out", 1, gs, cur, &u->nout_g, &u->nout_b);
    add_conv(u, &u->conv_out, "conv_out", cur, hp->in_channels, 3, 1);
}

int ad_unet_validate_hparams(const ad_unet_hparams *hp, char *err, size_t errlen)
{
    if (hp->in_channels != 1 && hp->in_channels != 3)
        return ad_err(err, errlen, "in_channels must be 1 or 3, got %d", hp->in_channels);
    if (hp->base_channels < 4 || hp->base_channels > 256 || hp->base_channels % 2)
        return ad_err(err, errlen, "base_channels must be an even number in 4..256, got %d",
                      hp->base_channels);
    if (hp->num_levels < 1 || hp->num_levels > AD_MAX_LEVELS)
        return ad_err(err, errlen, "channel_mult must have 1..%d entries, got %d",
                      AD_MAX_LEVELS, hp->num_levels);
    if (hp->res_blocks < 1 || hp->res_blocks > 4)
        return ad_err(err, errlen, "res_blocks must be in 1..4, got %d", hp->res_blocks);
    if (hp->groups < 1 || hp->groups > 64)
        return ad_err(err, errlen, "groups must be in 1..64, got %d", hp->groups);
    for (int l = 0; l < hp->num_levels; l++) {
        int m = hp->channel_mult[l];
        if (m < 1 || m > 8)
            return ad_err(err, errlen, "channel_mult[%d] must be in 1..8, got %d", l, m);
        if ((hp->base_channels * m) % hp->groups)
            return ad_err(err, errlen, "groups (%d) must divide every channel count, but not %d (level %d)",
                          hp->groups, hp->base_channels * m, l);
    }
    if (hp->base_channels % hp->groups)
        return ad_err(err, errlen, "groups (%d) must divide base_channels (%d)", hp->groups,
                      hp->base_channels);
    return 0;
}

static void unet_free_table(ad_unet *u)
{
    for (int l = 0; l < AD_MAX_LEVELS; l++) {
        free(u->down_rb[l]);
        free(u->up_rb[l]);
        u->down_rb[l] = u->up_rb[l] = NULL;
    }
    ad_param_table_free(&u->table);
}

int ad_unet_count_params(const ad_unet_hparams *hp, size_t *count, char *err, size_t errlen)
{
    if (ad_unet_validate_hparams(hp, err, errlen) < 0) return -1;
    ad_unet tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.hp = *hp;
    build_table(&tmp);
    *count = tmp.table.num_params;
    unet_free_table(&tmp);
    if (*count > MAX_PARAMS)
        return ad_err(err, errlen, "architecture has %zu parameters, more than the limit of %zu",
                      *count, MAX_PARAMS);
    return 0;
}

int ad_unet_create(ad_unet **out, const ad_unet_hparams *hp, char *err, size_t errlen)
{
    size_t count;
    *out = NULL;
    if (ad_unet_count_params(hp, &count, err, errlen) < 0) return -1;
    ad_unet *u = ad_xcalloc(1, sizeof(*u));
    u->hp = *hp;
    for (int l = hp->num_levels; l < AD_MAX_LEVELS; l++) u->hp.channel_mult[l] = 0;
    build_table(u);
    *out = u;
    return 0;
}

void ad_unet_free(ad_unet *u)
{
    if (!u) return;
    unet_free_table(u);
    free(u->params);
    free(u->grads);
    free(u->adam_m);
    free(u->adam_v);
    free(u->scratch);
    free(u);
}

const ad_unet_hparams *ad_unet_hp(const ad_unet *u) { return &u->hp; }
size_t ad_unet_num_params(const ad_unet *u) { return u->table.num_params; }
float *ad_unet_params(ad_unet *u)
{
    if (!u->params) u->params = ad_xalloc_aligned(sizeof(float) * u->table.num_params);
    return u->params;
}

float *ad_unet_grads(ad_unet *u)
{
    if (!u->grads) u->grads = ad_xalloc_aligned(sizeof(float) * u->table.num_params);
    return u->grads;
}

float *ad_unet_adam_m(ad_unet *u)
{
    if (!u->adam_m) u->adam_m = ad_xalloc_aligned(sizeof(float) * u->table.num_params);
    return u->adam_m;
}

float *ad_unet_adam_v(ad_unet *u)
{
    if (!u->adam_v) u->adam_v = ad_xalloc_aligned(sizeof(float) * u->table.num_params);
    return u->adam_v;
}

void ad_unet_zero_grad(ad_unet *u) { memset(ad_unet_grads(u), 0, sizeof(float) * u->table.num_params); }

int ad_unet_num_tensors(const ad_unet *u) { return u->table.count; }
const ad_param_table *ad_unet_table(const ad_unet *u) { return &u->table; }
const ad_param_info *ad_unet_tensor(const ad_unet *u, int i) { return ad_param_table_get(&u->table, i); }

const ad_param_info *ad_unet_find_tensor(const ad_unet *u, const char *name)
{
    return ad_param_table_find(&u->table, name);
}

int ad_unet_size_multiple(const ad_unet *u) { return 1 << (u->hp.num_levels - 1); }

void ad_unet_init(ad_unet *u, uint64_t seed)
{
    ad_unet_params(u);
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (int i = 0; i < u->table.count; i++) {
        const ad_param_info *t = &u->table.entries[i];
        float *p = u->params + t->offset;
        const char *leaf = strrchr(t->name, '.');
        bool is_norm = strstr(t->name, "norm") != NULL;
        if (is_norm) {
            float v = !strcmp(leaf, ".weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < t->count; k++) p[k] = v;
            continue;
        }
        /* weight and its bias share the weight's fan-in: U(-1/sqrt(fan_in), +) */
        const ad_param_info *w = t;
        if (!strcmp(leaf, ".bias")) w = &u->table.entries[i - 1];
        size_t fan_in = w->count / (size_t)w->shape[0];
        float bound = 1.0f / sqrtf((float)fan_in);
        for (size_t k = 0; k < t->count; k++) p[k] = (2.0f * ad_rng_uniform(&rng) - 1.0f) * bound;
    }
}

/* ---------------------------------------------------------------- planning */

typedef struct arena {
    float *base;
    size_t off, high;
} arena;

static float *take(arena *a, size_t n)
{
    float *p = a->base ? a->base + a->off : NULL;
    a->off += (n + 15) & ~(size_t)15;    /* keep 64-byte alignment */
    if (a->off > a->high) a->high = a->off;
    return p;
}

typedef struct planner {
    arena main, tmp;
    bool training;
    int threads;
    size_t work, max_act;
} planner;

static void note_act(planner *pl, size_t n)
{
    if (n > pl->max_act) pl->max_act = n;
}

static void note_conv(planner *pl, int n, int c, int h, int w, const conv_op *op)
{
    ad_conv_shape s = {n, c, h, w, op->cout, op->k, op->stride, op->k / 2};
    size_t ws = ad_conv2d_workspace(&s);
    if (ws > pl->work) pl->work = ws;
    if (ad_conv2d_winograd_ok(&s)) {
        ws = ad_conv2d_winograd_workspace(&s, pl->threads);
        if (ws > pl->work) pl->work = ws;
        if (pl->training) {
            ws = ad_conv2d_winograd_dw_workspace(&s, pl->threads);
            if (ws > pl->work) pl->work = ws;
        }
    }
}

static void plan_resblock(ad_unet *u, planner *pl, resblock *rb, int n, int h, int w)
{
    const size_t hw = (size_t)h * w, G = (size_t)u->hp.groups;
    arena *t = pl->training ? &pl->main : &pl->tmp;
    rb->h = h;
    rb->w = w;
    rb->out = take(&pl->main, (size_t)n * rb->cout * hw);
    if (!pl->training) pl->tmp.off = 0;
    rb->mean1 = take(t, n * G);
    rb->rstd1 = take(t, n * G);
    rb->mean2 = take(t, n * G);
    rb->rstd2 = take(t, n * G);
    rb->tproj = take(t, (size_t)n * rb->cout);
    rb->a1 = take(t, (size_t)n * rb->cin * hw);
    rb->h1 = take(t, (size_t)n * rb->cout * hw);
    rb->a2 = take(t, (size_t)n * rb->cout * hw);
    rb->skip = rb->skw != NONE ? take(t, (size_t)n * rb->cout * hw) : NULL;
    note_act(pl, (size_t)n * rb->cin * hw);
    note_act(pl, (size_t)n * rb->cout * hw);
    conv_op c1 = {0, 0, rb->cin, rb->cout, 3, 1}, c2 = {0, 0, rb->cout, rb->cout, 3, 1};
    note_conv(pl, n, rb->cin, h, w, &c1);
    note_conv(pl, n, rb->cout, h, w, &c2);
}

/* Assigns every activation pointer for (n, h, w); with bases NULL it only
 * measures. Mirrors the order of forward. */
static void plan(ad_unet *u, planner *pl, int n, int h, int w)
{
    const int L = u->hp.num_levels, R = u->hp.res_blocks;
    const size_t nt = (size_t)n * u->tdim;
    arena *m = &pl->main;
    u->temb_sin = take(m, (size_t)n * u->hp.base_channels);
    u->temb_h = take(m, nt);
    u->temb_a = take(m, nt);
    u->temb = take(m, nt);
    u->temb_s = take(m, nt);
    u->d_temb_s = take(m, nt);
    u->d_temb = take(m, nt);
    u->d_temb_h = take(m, nt);
    u->d_tproj = take(m, (size_t)n * 8 * 256);
    u->x_conv_in = take(m, (size_t)n * u->hp.base_channels * h * w);
    note_conv(pl, n, u->hp.in_channels, h, w, &u->conv_in);
    int cur = u->hp.base_channels, lh = h, lw = w;
    for (int l = 0; l < L; l++) {
        for (int r = 0; r < R; r++) {
            plan_resblock(u, pl, &u->down_rb[l][r], n, lh, lw);
            cur = u->down_rb[l][r].cout;
        }
        u->skips[l] = u->down_rb[l][R - 1].out;
        if (l < L - 1) {
            note_conv(pl, n, cur, lh, lw, &u->down[l]);
            lh /= 2;
            lw /= 2;
            u->downs[l] = take(m, (size_t)n * cur * lh * lw);
        }
    }
    plan_resblock(u, pl, &u->mid[0], n, lh, lw);
    plan_resblock(u, pl, &u->mid[1], n, lh, lw);
    for (int l = L - 1; l >= 0; l--) {
        size_t hw = (size_t)lh * lw;
        u->cats[l] = take(m, (size_t)n * (cur + u->ch[l]) * hw);
        note_act(pl, (size_t)n * (cur + u->ch[l]) * hw);
        for (int r = 0; r < R; r++) plan_resblock(u, pl, &u->up_rb[l][r], n, lh, lw);
        cur = u->ch[l];
        if (l > 0) {
            u->ups[l] = take(m, (size_t)n * cur * hw * 4);
            note_act(pl, (size_t)n * cur * hw * 4);
            lh *= 2;
            lw *= 2;
            note_conv(pl, n, cur, lh, lw, &u->up[l]);
            u->upconvs[l] = take(m, (size_t)n * cur * lh * lw);
        }
    }
    u->nout_mean = take(m, (size_t)n * u->hp.groups);
    u->nout_rstd = take(m, (size_t)n * u->hp.groups);
    u->a_out = take(m, (size_t)n * cur * h * w);
    note_conv(pl, n, cur, h, w, &u->conv_out);
    u->work = take(m, pl->work);
    if (pl->training) {
        for (int i = 0; i < 4; i++) u->g[i] = take(m, pl->max_act);
        lh = h;
        lw = w;
        for (int l = 0; l < L; l++) {
            u->dskips[l] = take(m, (size_t)n * u->ch[l] * lh * lw);
            lh /= 2;
            lw /= 2;
        }
    }
    u->max_act = pl->max_act;
}

/* Floats needed for (n, h, w, training); also carves pointers when base set. */
static size_t plan_at(ad_unet *u, float *base, int n, int h, int w, bool training)
{
    planner pl;
    memset(&pl, 0, sizeof(pl));
    pl.training = training;
    pl.threads = u->plan_threads;
    plan(u, &pl, n, h, w);             /* measure: work size and max_act settle */
    size_t main_floats = pl.main.high, total = main_floats + pl.tmp.high;
    if (!base) return total;
    planner real = pl;
    real.main.base = base;
    real.main.off = real.main.high = 0;
    real.tmp.base = base + main_floats;
    real.tmp.off = real.tmp.high = 0;
    plan(u, &real, n, h, w);
    u->plan_n = n;
    u->plan_h = h;
    u->plan_w = w;
    u->plan_training = training;
    return total;
}

int ad_unet_reserve(ad_unet *u, int n, int h, int w, bool training, char *err, size_t errlen)
{
    int mult = ad_unet_size_multiple(u);
    if (n < 1 || n > 1024) return ad_err(err, errlen, "batch %d out of range 1..1024", n);
    if (h < mult || w < mult || h > 8192 || w > 8192 || h % mult || w % mult)
        return ad_err(err, errlen, "input %dx%d must be %d..8192 pixels and a multiple of %d",
                      w, h, mult, mult);
    bool want_training = training || (u->res_training && u->scratch);
    int threads = ad_nn_get_threads();
    if (u->scratch && u->plan_threads > threads) threads = u->plan_threads;
    u->plan_threads = threads;
    size_t need = plan_at(u, NULL, n, h, w, want_training);
    if (need > MAX_SCRATCH_BYTES / sizeof(float))
        return ad_err(err, errlen, "UNet scratch for batch %d at %dx%d would need %zu MiB, over "
                      "the %zu MiB any one model may use", n, w, h, need * sizeof(float) >> 20,
                      MAX_SCRATCH_BYTES >> 20);
    if (need > u->scratch_cap) {
        char what[96];
        snprintf(what, sizeof what, "UNet scratch for batch %d at %dx%d%s", n, w, h,
                 want_training ? " (training)" : "");
        if (ad_memory_check(need * sizeof(float), what, err, errlen) < 0) return -1;
        free(u->scratch);
        u->scratch = NULL;
        u->scratch_cap = 0;
        if (posix_memalign((void **)&u->scratch, 64, need * sizeof(float)))
            return ad_err(err, errlen, "cannot allocate %zu MB of scratch for batch %d at %dx%d",
                          need * sizeof(float) >> 20, n, w, h);
        u->scratch_cap = need;
    }
    u->res_training = want_training;
    plan_at(u, u->scratch, n, h, w, want_training);
    u->have_forward = false;
    return 0;
}

size_t ad_unet_scratch_bytes(const ad_unet *u) { return u->scratch_cap * sizeof(float); }

/* ---------------------------------------------------------------- forward */

#define P(off) (u->params + (off))
#define G(off) (u->grads + (off))

static double conv_gflop(const ad_conv_shape *s)
{
    double ho = ad_conv_out_size(s->h, s->k, s->stride, s->pad);
    double wo = ad_conv_out_size(s->w, s->k, s->stride, s->pad);
    return 2e-9 * s->n * s->oc * ho * wo * s->c * s->k * s->k;
}

static int conv_threads(const ad_unet *u)
{
    int t = ad_nn_get_threads();
    return t < u->plan_threads ? t : u->plan_threads;
}

static void conv_fwd(ad_unet *u, const conv_op *op, float *out, const float *in, int n, int h, int w)
{
    ad_conv_shape s = {n, op->cin, h, w, op->cout, op->k, op->stride, op->k / 2};
    double t0 = ad_now_sec();
    if (ad_conv2d_winograd_ok(&s))
        ad_conv2d_winograd(out, in, P(op->w), P(op->b), &s, u->work, 0, 0, conv_threads(u));
    else
        ad_conv2d_forward(out, in, P(op->w), P(op->b), &s, u->work);
    u->stats.conv_sec += ad_now_sec() - t0;
    u->stats.conv_gflop += conv_gflop(&s);
}

static void conv_bwd(ad_unet *u, const conv_op *op, float *din, const float *dout, const float *in,
                     int n, int h, int w)
{
    ad_conv_shape s = {n, op->cin, h, w, op->cout, op->k, op->stride, op->k / 2};
    double t0 = ad_now_sec();
    if (ad_conv2d_winograd_ok(&s)) {
        int ho = s.h, wo = s.w;
        float *db = G(op->b);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < op->cout; o++) {
                const float *d = dout + ((size_t)i * op->cout + o) * ho * wo;
                float acc = 0.0f;
                for (int k = 0; k < ho * wo; k++) acc += d[k];
                db[o] += acc;
            }
        ad_conv2d_winograd_dw(G(op->w), dout, in, &s, u->work, conv_threads(u));
        if (din) ad_conv2d_winograd(din, dout, P(op->w), NULL, &s, u->work, 1, 1, conv_threads(u));
    } else {
        ad_conv2d_backward(din, G(op->w), G(op->b), dout, in, P(op->w), &s, u->work);
    }
    u->stats.conv_sec += ad_now_sec() - t0;
    u->stats.conv_gflop += conv_gflop(&s) * (din ? 2 : 1);
}

void ad_unet_get_stats(const ad_unet *u, ad_unet_stats *st) { *st = u->stats; }
void ad_unet_reset_stats(ad_unet *u) { memset(&u->stats, 0, sizeof(u->stats)); }

static void resblock_forward(ad_unet *u, resblock *rb, const float *x, int n)
{
    const int G = u->hp.groups, hw = rb->h * rb->w;
    const size_t nout = (size_t)n * rb->cout * hw;
    conv_op c1 = {rb->c1w, rb->c1b, rb->cin, rb->cout, 3, 1};
    conv_op c2 = {rb->c2w, rb->c2b, rb->cout, rb->cout, 3, 1};
    rb->x = x;
    ad_groupnorm_forward(rb->a1, rb->mean1, rb->rstd1, x, P(rb->n1g), P(rb->n1b), n, rb->cin, hw, G, 1);
    conv_fwd(u, &c1, rb->h1, rb->a1, n, rb->h, rb->w);
    ad_linear_forward(rb->tproj, u->temb_s, P(rb->tw), P(rb->tb), n, u->tdim, rb->cout);
    ad_add_channel_forward(rb->h1, rb->tproj, n, rb->cout, hw);
    ad_groupnorm_forward(rb->a2, rb->mean2, rb->rstd2, rb->h1, P(rb->n2g), P(rb->n2b), n, rb->cout, hw, G, 1);
    conv_fwd(u, &c2, rb->out, rb->a2, n, rb->h, rb->w);
    if (rb->skw != NONE) {
        conv_op sk = {rb->skw, rb->skb, rb->cin, rb->cout, 1, 1};
        conv_fwd(u, &sk, rb->skip, x, n, rb->h, rb->w);
        ad_add_backward(rb->out, rb->skip, nout);      /* out += skip */
    } else {
        ad_add_backward(rb->out, x, nout);             /* out += x */
    }
}

void ad_unet_forward(ad_unet *u, float *eps, const float *x, const float *t, int n, int h, int w)
{
    const int L = u->hp.num_levels, R = u->hp.res_blocks, base = u->hp.base_channels;
    ad_unet_params(u);
    if (n != u->plan_n || h != u->plan_h || w != u->plan_w) {
        AD_ASSERT(u->scratch && n >= 1 && h >= 1 && w >= 1);
        AD_ASSERT(h % ad_unet_size_multiple(u) == 0 && w % ad_unet_size_multiple(u) == 0);
        AD_ASSERT(plan_at(u, NULL, n, h, w, u->res_training) <= u->scratch_cap);
        plan_at(u, u->scratch, n, h, w, u->res_training);
    }
    u->x_in = x;
    ad_time_embedding(u->temb_sin, t, n, base);
    ad_linear_forward(u->temb_h, u->temb_sin, P(u->mlp0_w), P(u->mlp0_b), n, base, u->tdim);
    ad_silu_forward(u->temb_a, u->temb_h, (size_t)n * u->tdim);
    ad_linear_forward(u->temb, u->temb_a, P(u->mlp2_w), P(u->mlp2_b), n, u->tdim, u->tdim);
    ad_silu_forward(u->temb_s, u->temb, (size_t)n * u->tdim);

    conv_fwd(u, &u->conv_in, u->x_conv_in, x, n, h, w);
    const float *cur = u->x_conv_in;
    int cc = base, lh = h, lw = w;
    for (int l = 0; l < L; l++) {
        for (int r = 0; r < R; r++) {
            resblock_forward(u, &u->down_rb[l][r], cur, n);
            cur = u->down_rb[l][r].out;
        }
        cc = u->ch[l];
        if (l < L - 1) {
            conv_fwd(u, &u->down[l], u->downs[l], cur, n, lh, lw);
            cur = u->downs[l];
            lh /= 2;
            lw /= 2;
        }
    }
    resblock_forward(u, &u->mid[0], cur, n);
    resblock_forward(u, &u->mid[1], u->mid[0].out, n);
    cur = u->mid[1].out;
    for (int l = L - 1; l >= 0; l--) {
        int hw = lh * lw;
        ad_concat_forward(u->cats[l], cur, u->skips[l], n, cc, u->ch[l], hw);
        cur = u->cats[l];
        for (int r = 0; r < R; r++) {
            resblock_forward(u, &u->up_rb[l][r], cur, n);
            cur = u->up_rb[l][r].out;
        }
        cc = u->ch[l];
        if (l > 0) {
            ad_upsample2x_forward(u->ups[l], cur, n, cc, lh, lw);
            lh *= 2;
            lw *= 2;
            conv_fwd(u, &u->up[l], u->upconvs[l], u->ups[l], n, lh, lw);
            cur = u->upconvs[l];
        }
    }
    ad_groupnorm_forward(u->a_out, u->nout_mean, u->nout_rstd, cur, P(u->nout_g), P(u->nout_b),
                         n, cc, h * w, u->hp.groups, 1);
    conv_fwd(u, &u->conv_out, eps, u->a_out, n, h, w);
    u->have_forward = u->plan_training;
}

/* ---------------------------------------------------------------- backward */

static void zero(float *p, size_t n) { memset(p, 0, sizeof(float) * n); }

/* dx += d loss / d x of the block given dout; ta, tb are scratch. */
static void resblock_backward(ad_unet *u, resblock *rb, float *dx, const float *dout, float *ta, float *tb, int n)
{
    const int G = u->hp.groups, hw = rb->h * rb->w;
    const size_t nin = (size_t)n * rb->cin * hw, nout = (size_t)n * rb->cout * hw;
    conv_op c1 = {rb->c1w, rb->c1b, rb->cin, rb->cout, 3, 1};
    conv_op c2 = {rb->c2w, rb->c2b, rb->cout, rb->cout, 3, 1};
    if (rb->skw != NONE) {
        conv_op sk = {rb->skw, rb->skb, rb->cin, rb->cout, 1, 1};
        conv_bwd(u, &sk, dx, dout, rb->x, n, rb->h, rb->w);
    } else {
        ad_add_backward(dx, dout, nout);
    }
    zero(ta, nout);
    conv_bwd(u, &c2, ta, dout, rb->a2, n, rb->h, rb->w);
    zero(tb, nout);
    ad_groupnorm_backward(tb, G(rb->n2g), G(rb->n2b), ta, rb->h1, rb->mean2, rb->rstd2,
                          P(rb->n2g), P(rb->n2b), n, rb->cout, hw, G, 1);
    zero(u->d_tproj, (size_t)n * rb->cout);
    ad_add_channel_backward(u->d_tproj, tb, n, rb->cout, hw);
    ad_linear_backward(u->d_temb_s, G(rb->tw), G(rb->tb), u->d_tproj, u->temb_s, P(rb->tw),
                       n, u->tdim, rb->cout);
    zero(ta, nin);
    conv_bwd(u, &c1, ta, tb, rb->a1, n, rb->h, rb->w);
    ad_groupnorm_backward(dx, G(rb->n1g), G(rb->n1b), ta, rb->x, rb->mean1, rb->rstd1,
                          P(rb->n1g), P(rb->n1b), n, rb->cin, hw, G, 1);
}

void ad_unet_backward(ad_unet *u, float *dx, const float *deps)
{
    AD_ASSERT(u->have_forward);
    ad_unet_grads(u);
    const int L = u->hp.num_levels, R = u->hp.res_blocks, base = u->hp.base_channels;
    const int n = u->plan_n, h = u->plan_h, w = u->plan_w;
    float *dcur = u->g[0], *dnext = u->g[1], *ta = u->g[2], *tb = u->g[3];
    zero(u->d_temb_s, (size_t)n * u->tdim);
    for (int l = 0; l < L; l++)
        zero(u->dskips[l], (size_t)n * u->ch[l] * (size_t)(h >> l) * (size_t)(w >> l));

    int cc = u->ch[0];
    zero(ta, (size_t)n * cc * h * w);
    conv_bwd(u, &u->conv_out, ta, deps, u->a_out, n, h, w);
    const float *nout_in = u->up_rb[0][R - 1].out;
    zero(dcur, (size_t)n * cc * h * w);
    ad_groupnorm_backward(dcur, G(u->nout_g), G(u->nout_b), ta, nout_in, u->nout_mean, u->nout_rstd,
                          P(u->nout_g), P(u->nout_b), n, cc, h * w, u->hp.groups, 1);
    float *t;
    for (int l = 0; l < L; l++) {
        int lh = h >> l, lw = w >> l;
        size_t hw = (size_t)lh * lw;
        if (l > 0) {
            /* dcur is the gradient of up conv l's output at (2lh, 2lw) */
            zero(ta, (size_t)n * cc * hw * 4);
            conv_bwd(u, &u->up[l], ta, dcur, u->ups[l], n, lh * 2, lw * 2);
            zero(dcur, (size_t)n * u->ch[l] * hw);
            ad_upsample2x_backward(dcur, ta, n, u->ch[l], lh, lw);
        }
        cc = u->ch[l];
        for (int r = R - 1; r >= 0; r--) {
            resblock *rb = &u->up_rb[l][r];
            zero(dnext, (size_t)n * rb->cin * hw);
            resblock_backward(u, rb, dnext, dcur, ta, tb, n);
            t = dcur; dcur = dnext; dnext = t;
        }
        /* dcur is d cat[l]: split into the incoming path and the skip */
        int cin_path = u->up_rb[l][0].cin - u->ch[l];
        zero(dnext, (size_t)n * cin_path * hw);
        ad_concat_backward(dnext, u->dskips[l], dcur, n, cin_path, u->ch[l], (int)hw);
        t = dcur; dcur = dnext; dnext = t;
        cc = cin_path;
    }
    {
        int lh = h >> (L - 1), lw = w >> (L - 1);
        size_t hw = (size_t)lh * lw;
        for (int i = 1; i >= 0; i--) {
            zero(dnext, (size_t)n * u->mid[i].cin * hw);
            resblock_backward(u, &u->mid[i], dnext, dcur, ta, tb, n);
            t = dcur; dcur = dnext; dnext = t;
        }
    }
    for (int l = L - 1; l >= 0; l--) {
        int lh = h >> l, lw = w >> l;
        size_t hw = (size_t)lh * lw;
        if (l < L - 1)
            conv_bwd(u, &u->down[l], u->dskips[l], dcur, u->skips[l], n, lh, lw);
        else
            ad_add_backward(u->dskips[l], dcur, (size_t)n * u->ch[l] * hw);
        const float *dsrc = u->dskips[l];
        for (int r = R - 1; r >= 0; r--) {
            resblock *rb = &u->down_rb[l][r];
            zero(dnext, (size_t)n * rb->cin * hw);
            resblock_backward(u, rb, dnext, dsrc, ta, tb, n);
            t = dcur; dcur = dnext; dnext = t;
            dsrc = dcur;
        }
    }
    if (dx) zero(dx, (size_t)n * u->hp.in_channels * h * w);
    conv_bwd(u, &u->conv_in, dx, dcur, u->x_in, n, h, w);

    /* time embedding MLP */
    zero(u->d_temb, (size_t)n * u->tdim);
    ad_silu_backward(u->d_temb, u->d_temb_s, u->temb, (size_t)n * u->tdim);
    zero(u->d_temb_h, (size_t)n * u->tdim);
    ad_linear_backward(u->d_temb_h, G(u->mlp2_w), G(u->mlp2_b), u->d_temb, u->temb_a, P(u->mlp2_w),
                       n, u->tdim, u->tdim);
    zero(u->d_temb, (size_t)n * u->tdim);
    ad_silu_backward(u->d_temb, u->d_temb_h, u->temb_h, (size_t)n * u->tdim);
    ad_linear_backward(NULL, G(u->mlp0_w), G(u->mlp0_b), u->d_temb, u->temb_sin, P(u->mlp0_w),
                       n, base, u->tdim);
}
