/* The learned anomaly head: network, loss, and its safetensors file.
 * See include/anomalyd/head.h for the shape of the network. */
#include "anomalyd/head.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/model.h"
#include "anomalyd/nn_layers.h"
#include "anomalyd/util.h"

/* Units per level: enc a, enc b, dec a, dec b (the deepest level has no
 * decoder pair, the top level has the output conv in its place). */
#define MAX_UNITS (AD_HEAD_MAX_LEVELS * 4)

#define HEAD_FORMAT "anomaly-head-1"
#define HEAD_HINT "not an anomalyd head file?"
#define FRAME_MEAN "head.frame_mean"
#define FRAME_STD "head.frame_std"
#define MAX_STATS_SIDE 8192   /* camera.width/height's limit */

/* One 3x3 conv, followed by GroupNorm+SiLU unless it is the output conv. */
typedef struct conv_unit {
    char name[16];
    int cin, cout, stride, norm;
    size_t w, b, gamma, beta;      /* parameter offsets */
    int level;                     /* spatial level of its input: 0 = H, 1 = H/2, ... */
    /* scratch for the reserved size */
    float *pre, *act, *mean, *rstd, *dpre, *dact;
} conv_unit;

struct ad_head {
    ad_head_hparams hp;
    int num_units;
    conv_unit u[MAX_UNITS];
    /* indices into u per level */
    int enc_a[AD_HEAD_MAX_LEVELS], enc_b[AD_HEAD_MAX_LEVELS];
    int dec_a[AD_HEAD_MAX_LEVELS], dec_b[AD_HEAD_MAX_LEVELS], out;
    ad_param_table table;
    float *params, *grads;
    /* zscore heads: frame statistics (C, stats_h, stats_w) each, or NULL */
    float *frame_mean, *frame_std;
    int stats_h, stats_w;
    /* scratch */
    float *arena;
    size_t arena_floats;
    int n, h, w, training;
    float *in0;
    /* per decoder level l: upsampled deeper features (ch(l+1) at level l) and
     * the concat of dec a with enc b (2 ch(l) at level l), and their grads */
    float *up[AD_HEAD_MAX_LEVELS], *cat[AD_HEAD_MAX_LEVELS];
    float *dup[AD_HEAD_MAX_LEVELS], *dcat[AD_HEAD_MAX_LEVELS];
    float *work;
};

static int add_unit(ad_head *hd, const char *name, int cin, int cout, int stride, int norm, int level)
{
    AD_ASSERT(hd->num_units < MAX_UNITS);
    int i = hd->num_units++;
    conv_unit *u = &hd->u[i];
    snprintf(u->name, sizeof u->name, "%s", name);
    u->cin = cin;
    u->cout = cout;
    u->stride = stride;
    u->norm = norm;
    u->level = level;
    char prefix[64];
    int wshape[4] = {u->cout, u->cin, 3, 3};
    snprintf(prefix, sizeof prefix, "head.%s.conv", u->name);
    ad_param_table_add_pair(&hd->table, prefix, 4, wshape, u->cout, &u->w, &u->b);
    if (u->norm) {
        int cshape[1] = {u->cout};
        snprintf(prefix, sizeof prefix, "head.%s.norm", u->name);
        ad_param_table_add_pair(&hd->table, prefix, 1, cshape, u->cout, &u->gamma, &u->beta);
    }
    return i;
}

/* x, x_hat, diff [, z] [, fold(x2)] */
static int input_channels(const ad_head_hparams *hp)
{
    int c = hp->image_channels;
    return 2 * c + 1 + (hp->zscore ? c : 0) + (hp->detail ? 4 * c : 0);
}

/* Channels at level l: B * 2^l. Tensor order (and so the file) for 3
 * levels is the original head's: enc1a..enc3b, dec2a, dec2b, dec1a, dec1b, out. */
static void build(ad_head *hd)
{
    int B = hd->hp.base_channels, cin = input_channels(&hd->hp), L = hd->hp.levels;
    char name[16];
    for (int l = 0; l < L; l++) {
        int ch = B << l;
        snprintf(name, sizeof name, "enc%da", l + 1);
        hd->enc_a[l] = l == 0 ? add_unit(hd, name, cin, ch, 1, 1, 0)
                              : add_unit(hd, name, ch / 2, ch, 2, 1, l - 1);
        snprintf(name, sizeof name, "enc%db", l + 1);
        hd->enc_b[l] = add_unit(hd, name, ch, ch, 1, 1, l);
    }
    for (int l = L - 2; l >= 0; l--) {
        int ch = B << l;
        snprintf(name, sizeof name, "dec%da", l + 1);
        hd->dec_a[l] = add_unit(hd, name, 2 * ch, ch, 1, 1, l);
        snprintf(name, sizeof name, "dec%db", l + 1);
        hd->dec_b[l] = add_unit(hd, name, 2 * ch, ch, 1, 1, l);
    }
    hd->out = add_unit(hd, "out", B, 1, 1, 0, 0);
}

int ad_head_create(ad_head **out, const ad_head_hparams *hp, char *err, size_t errlen)
{
    *out = NULL;
    if (hp->image_channels != 1 && hp->image_channels != 3)
        return ad_err(err, errlen, "head: image channels must be 1 or 3, got %d", hp->image_channels);
    if (hp->base_channels < 4 || hp->base_channels > 128)
        return ad_err(err, errlen, "head: base channels must be 4..128, got %d", hp->base_channels);
    if (hp->levels < 2 || hp->levels > AD_HEAD_MAX_LEVELS)
        return ad_err(err, errlen, "head: levels must be 2..%d, got %d", AD_HEAD_MAX_LEVELS, hp->levels);
    if (hp->groups < 1 || hp->base_channels % hp->groups)
        return ad_err(err, errlen, "head: groups (%d) must divide the base channels (%d)",
                      hp->groups, hp->base_channels);
    if (hp->zscore && hp->detail)
        return ad_err(err, errlen, "head: a head reads z-scores or the frame at twice the size, "
                      "not both");
    ad_head *hd = ad_xcalloc(1, sizeof *hd);
    hd->hp = *hp;
    build(hd);
    hd->params = ad_xalloc_aligned(sizeof(float) * hd->table.num_params);
    hd->grads = ad_xalloc_aligned(sizeof(float) * hd->table.num_params);
    *out = hd;
    return 0;
}

void ad_head_free(ad_head *hd)
{
    if (!hd) return;
    ad_param_table_free(&hd->table);
    free(hd->params);
    free(hd->grads);
    free(hd->frame_mean);
    free(hd->frame_std);
    free(hd->arena);
    free(hd);
}

const ad_head_hparams *ad_head_hp(const ad_head *hd) { return &hd->hp; }
size_t ad_head_num_params(const ad_head *hd) { return hd->table.num_params; }
int ad_head_size_multiple(const ad_head *hd) { return 1 << (hd->hp.levels - 1) < 4 ? 4 : 1 << (hd->hp.levels - 1); }
float *ad_head_params(ad_head *hd) { return hd->params; }
float *ad_head_grads(ad_head *hd) { return hd->grads; }
int ad_head_num_tensors(const ad_head *hd) { return hd->table.count; }
const ad_param_info *ad_head_tensor(const ad_head *hd, int i) { return ad_param_table_get(&hd->table, i); }
void ad_head_zero_grad(ad_head *hd) { memset(hd->grads, 0, sizeof(float) * hd->table.num_params); }

void ad_head_set_frame_stats(ad_head *hd, const float *mean, const float *std, int h, int w)
{
    AD_ASSERT(hd->hp.zscore && h > 0 && w > 0);
    size_t count = (size_t)hd->hp.image_channels * h * w;
    free(hd->frame_mean);
    free(hd->frame_std);
    hd->frame_mean = ad_xmalloc(count * sizeof(float));
    hd->frame_std = ad_xmalloc(count * sizeof(float));
    memcpy(hd->frame_mean, mean, count * sizeof(float));
    memcpy(hd->frame_std, std, count * sizeof(float));
    hd->stats_h = h;
    hd->stats_w = w;
}

const float *ad_head_frame_stats(const ad_head *hd, const float **std, int *h, int *w)
{
    if (std) *std = hd->frame_std;
    if (h) *h = hd->stats_h;
    if (w) *w = hd->stats_w;
    return hd->frame_mean;
}

void ad_head_zscore(float *z, const float *x, const float *mean, const float *std, size_t count)
{
    const float eps2 = AD_HEAD_ZSCORE_EPS * AD_HEAD_ZSCORE_EPS;
    for (size_t i = 0; i < count; i++) {
        float v = (x[i] - mean[i]) / sqrtf(std[i] * std[i] + eps2);
        v = v > AD_HEAD_ZSCORE_MAX ? AD_HEAD_ZSCORE_MAX : v < -AD_HEAD_ZSCORE_MAX ? -AD_HEAD_ZSCORE_MAX : v;
        z[i] = v / AD_HEAD_ZSCORE_SCALE;
    }
}

void ad_head_stats_leave_out(float *mean, float *std, const float *left_out, size_t count, int n)
{
    if (n < 2) return;
    double nn = n;
    for (size_t i = 0; i < count; i++) {
        double m = mean[i], s = std[i], xi = left_out[i];
        double m_out = (nn * m - xi) / (nn - 1);
        double v_out = (nn * (s * s + m * m) - xi * xi) / (nn - 1) - m_out * m_out;
        mean[i] = (float)m_out;
        std[i] = (float)sqrt(v_out > 0 ? v_out : 0);
    }
}

void ad_head_init(ad_head *hd, uint64_t seed)
{
    ad_rng rng;
    ad_rng_seed(&rng, seed);
    for (int i = 0; i < hd->num_units; i++) {
        conv_unit *u = &hd->u[i];
        float bound = 1.0f / sqrtf((float)(u->cin * 9));  /* PyTorch's conv default */
        size_t nw = (size_t)u->cout * u->cin * 9;
        for (size_t k = 0; k < nw; k++) hd->params[u->w + k] = bound * (2.0f * ad_rng_uniform(&rng) - 1.0f);
        for (int k = 0; k < u->cout; k++) hd->params[u->b + k] = bound * (2.0f * ad_rng_uniform(&rng) - 1.0f);
        if (u->norm)
            for (int k = 0; k < u->cout; k++) {
                hd->params[u->gamma + k] = 1.0f;
                hd->params[u->beta + k] = 0.0f;
            }
    }
    /* Defects are rare: start near p = 0.05 so early steps do not fight a
     * flood of false positives. */
    hd->params[hd->u[hd->out].b] = -3.0f;
}

static ad_conv_shape unit_shape(const ad_head *hd, const conv_unit *u)
{
    ad_conv_shape s = {hd->n, u->cin, hd->h >> u->level, hd->w >> u->level, u->cout, 3, u->stride, 1};
    return s;
}

static size_t unit_out_floats(const ad_head *hd, const conv_unit *u)
{
    int lvl = u->level + (u->stride == 2);
    return (size_t)hd->n * u->cout * (size_t)(hd->h >> lvl) * (size_t)(hd->w >> lvl);
}

/* Lays the scratch out over `base` (NULL: just count). */
static size_t layout(ad_head *hd, float *base)
{
    size_t used = 0;
#define TAKE(ptr, count)                                  \
    do {                                                  \
        size_t c_ = ((count) + 15) & ~(size_t)15;         \
        (ptr) = base ? base + used : NULL;                \
        used += c_;                                       \
    } while (0)
    int B = hd->hp.base_channels;
    size_t hw = (size_t)hd->h * hd->w, n = (size_t)hd->n;
    TAKE(hd->in0, n * (size_t)input_channels(&hd->hp) * hw);
    for (int l = 0; l < hd->hp.levels - 1; l++) {
        size_t f = n * (size_t)(2 * (B << l)) * (hw >> (2 * l));
        TAKE(hd->up[l], f);
        TAKE(hd->cat[l], f);
        TAKE(hd->dup[l], hd->training ? f : 0);
        TAKE(hd->dcat[l], hd->training ? f : 0);
    }
    size_t work = 0;
    for (int i = 0; i < hd->num_units; i++) {
        conv_unit *u = &hd->u[i];
        size_t o = unit_out_floats(hd, u);
        TAKE(u->pre, o);
        TAKE(u->act, u->norm ? o : 0);
        TAKE(u->mean, n * hd->hp.groups);
        TAKE(u->rstd, n * hd->hp.groups);
        TAKE(u->dpre, hd->training ? o : 0);
        TAKE(u->dact, hd->training && u->norm ? o : 0);
        ad_conv_shape s = unit_shape(hd, u);
        size_t wk = ad_conv2d_workspace(&s);
        if (wk > work) work = wk;
    }
    TAKE(hd->work, work);
#undef TAKE
    return used;
}

size_t ad_head_scratch_bytes(const ad_head *hd, int n, int h, int w, bool training)
{
    ad_head probe = *hd; /* layout() writes pointers: into the copy only */
    probe.n = n;
    probe.h = h;
    probe.w = w;
    probe.training = training;
    return layout(&probe, NULL) * sizeof(float);
}

int ad_head_reserve(ad_head *hd, int n, int h, int w, bool training, char *err, size_t errlen)
{
    int mult = ad_head_size_multiple(hd);
    if (n < 1 || h < mult || w < mult || h % mult || w % mult)
        return ad_err(err, errlen, "head: input %dx%d (batch %d) must be a positive multiple of %d",
                      w, h, n, mult);
    if ((size_t)n * h * w > ((size_t)1 << 26))
        return ad_err(err, errlen, "head: input %dx%d x %d is too large", w, h, n);
    if (hd->arena && n == hd->n && h == hd->h && w == hd->w && (int)training == hd->training)
        return 0;
    /* Keep the old layout until the new arena exists: a refused reserve
     * leaves the head as it was. */
    size_t need = ad_head_scratch_bytes(hd, n, h, w, training) / sizeof(float);
    char what[96];
    snprintf(what, sizeof what, "head scratch for batch %d at %dx%d%s", n, w, h,
             training ? " (training)" : "");
    float *arena = NULL;
    if (ad_memory_check(sizeof(float) * need, what, err, errlen) < 0) return -1;
    if (posix_memalign((void **)&arena, 64, sizeof(float) * need))
        return ad_err(err, errlen, "cannot allocate %zu MiB for the %s", sizeof(float) * need >> 20,
                      what);
    memset(arena, 0, sizeof(float) * need);
    free(hd->arena);
    hd->n = n;
    hd->h = h;
    hd->w = w;
    hd->training = training;
    hd->arena = arena;
    hd->arena_floats = need;
    layout(hd, hd->arena);
    return 0;
}

static const float *unit_output(const conv_unit *u) { return u->norm ? u->act : u->pre; }

static void unit_forward(ad_head *hd, conv_unit *u, const float *in)
{
    ad_conv_shape s = unit_shape(hd, u);
    const float *p = hd->params;
    ad_conv2d_forward(u->pre, in, p + u->w, p + u->b, &s, hd->work);
    if (u->norm) {
        int lvl = u->level + (u->stride == 2);
        int hw = (hd->h >> lvl) * (hd->w >> lvl);
        ad_groupnorm_forward(u->act, u->mean, u->rstd, u->pre, p + u->gamma, p + u->beta,
                             hd->n, u->cout, hw, hd->hp.groups, 1);
    }
}

/* Given u->dact (or u->dpre for the output conv), accumulates parameter
 * gradients and adds the input gradient into din (NULL: skip). */
static void unit_backward(ad_head *hd, conv_unit *u, const float *in, float *din)
{
    ad_conv_shape s = unit_shape(hd, u);
    const float *p = hd->params;
    float *g = hd->grads;
    if (u->norm) {
        int lvl = u->level + (u->stride == 2);
        int hw = (hd->h >> lvl) * (hd->w >> lvl);
        memset(u->dpre, 0, sizeof(float) * unit_out_floats(hd, u));
        ad_groupnorm_backward(u->dpre, g + u->gamma, g + u->beta, u->dact, u->pre, u->mean, u->rstd,
                              p + u->gamma, p + u->beta, hd->n, u->cout, hw, hd->hp.groups, 1);
    }
    ad_conv2d_backward(din, g + u->w, g + u->b, u->dpre, in, p + u->w, &s, hd->work);
}

/* dst (4C, h, w) = x2 (C, 2h, 2w) folded 2x2 (see head.h). */
static void fold2x2(float *dst, const float *x2, int c, int h, int w)
{
    size_t hw = (size_t)h * w;
    for (int ch = 0; ch < c; ch++)
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                float *o = dst + (size_t)(4 * ch + 2 * dy + dx) * hw;
                for (int y = 0; y < h; y++) {
                    const float *row = x2 + ((size_t)ch * 2 * h + 2 * y + dy) * 2 * w + dx;
                    for (int x = 0; x < w; x++) o[(size_t)y * w + x] = row[2 * x];
                }
            }
}

void ad_head_forward(ad_head *hd, float *logits, const float *x, const float *x_hat, const float *z,
                     const float *x2, int n, int h, int w)
{
    AD_ASSERT(hd->arena && n == hd->n && h == hd->h && w == hd->w);
    AD_ASSERT(hd->hp.zscore == (z != NULL));
    AD_ASSERT(hd->hp.detail == (x2 != NULL));
    int C = hd->hp.image_channels, B = hd->hp.base_channels, cin = input_channels(&hd->hp);
    size_t hw = (size_t)h * w;
    conv_unit *u = hd->u;
    /* input: x, x_hat, channel-mean |x - x_hat| [, z] [, fold(x2)] */
    for (int b = 0; b < n; b++) {
        float *dst = hd->in0 + (size_t)b * cin * hw;
        const float *xb = x + (size_t)b * C * hw, *rb = x_hat + (size_t)b * C * hw;
        memcpy(dst, xb, sizeof(float) * C * hw);
        memcpy(dst + C * hw, rb, sizeof(float) * C * hw);
        float *diff = dst + 2 * C * hw;
        for (size_t i = 0; i < hw; i++) {
            float s = 0;
            for (int c = 0; c < C; c++) s += fabsf(xb[c * hw + i] - rb[c * hw + i]);
            diff[i] = s / C;
        }
        if (z) memcpy(diff + hw, z + (size_t)b * C * hw, sizeof(float) * C * hw);
        if (x2) fold2x2(diff + hw, x2 + (size_t)b * C * 4 * hw, C, h, w);
    }
    int L = hd->hp.levels;
    unit_forward(hd, &u[hd->enc_a[0]], hd->in0);
    unit_forward(hd, &u[hd->enc_b[0]], u[hd->enc_a[0]].act);
    for (int l = 1; l < L; l++) {
        unit_forward(hd, &u[hd->enc_a[l]], u[hd->enc_b[l - 1]].act);
        unit_forward(hd, &u[hd->enc_b[l]], u[hd->enc_a[l]].act);
    }
    const float *deeper = u[hd->enc_b[L - 1]].act;
    for (int l = L - 2; l >= 0; l--) {
        int ch = B << l, lh = h >> l, lw = w >> l;
        ad_upsample2x_forward(hd->up[l], deeper, n, 2 * ch, lh / 2, lw / 2);
        unit_forward(hd, &u[hd->dec_a[l]], hd->up[l]);
        ad_concat_forward(hd->cat[l], u[hd->dec_a[l]].act, u[hd->enc_b[l]].act, n, ch, ch, lh * lw);
        unit_forward(hd, &u[hd->dec_b[l]], hd->cat[l]);
        deeper = u[hd->dec_b[l]].act;
    }
    unit_forward(hd, &u[hd->out], deeper);
    memcpy(logits, unit_output(&u[hd->out]), sizeof(float) * n * hw);
}

void ad_head_backward(ad_head *hd, const float *dlogits)
{
    AD_ASSERT(hd->training);
    int n = hd->n, h = hd->h, w = hd->w, B = hd->hp.base_channels, L = hd->hp.levels;
    size_t hw = (size_t)h * w;
    conv_unit *u = hd->u;
    for (int i = 0; i < hd->num_units; i++)
        if (u[i].norm) memset(u[i].dact, 0, sizeof(float) * unit_out_floats(hd, &u[i]));
    for (int l = 0; l < L - 1; l++) {
        size_t f = (size_t)n * (2 * (B << l)) * (hw >> (2 * l));
        memset(hd->dup[l], 0, sizeof(float) * f);
        memset(hd->dcat[l], 0, sizeof(float) * f);
    }
    memcpy(u[hd->out].dpre, dlogits, sizeof(float) * n * hw);
    int top = L > 1 ? hd->dec_b[0] : hd->enc_b[0];
    unit_backward(hd, &u[hd->out], u[top].act, u[top].dact);
    for (int l = 0; l < L - 1; l++) {
        int ch = B << l, lh = h >> l, lw = w >> l;
        unit_backward(hd, &u[hd->dec_b[l]], hd->cat[l], hd->dcat[l]);
        ad_concat_backward(u[hd->dec_a[l]].dact, u[hd->enc_b[l]].dact, hd->dcat[l], n, ch, ch, lh * lw);
        unit_backward(hd, &u[hd->dec_a[l]], hd->up[l], hd->dup[l]);
        int below = l + 1 < L - 1 ? hd->dec_b[l + 1] : hd->enc_b[L - 1];
        ad_upsample2x_backward(u[below].dact, hd->dup[l], n, 2 * ch, lh / 2, lw / 2);
    }
    for (int l = L - 1; l >= 1; l--) {
        unit_backward(hd, &u[hd->enc_b[l]], u[hd->enc_a[l]].act, u[hd->enc_a[l]].dact);
        unit_backward(hd, &u[hd->enc_a[l]], u[hd->enc_b[l - 1]].act, u[hd->enc_b[l - 1]].dact);
    }
    unit_backward(hd, &u[hd->enc_b[0]], u[hd->enc_a[0]].act, u[hd->enc_a[0]].dact);
    unit_backward(hd, &u[hd->enc_a[0]], hd->in0, NULL);
}

double ad_head_loss(float *dlogits, const float *logits, const float *mask, size_t n,
                    float gamma, float focal_weight)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        float z = logits[i], y = mask[i] > 0.5f ? 1.0f : 0.0f;
        /* log p and log(1-p) computed stably from the logit */
        float log_p = z >= 0 ? -log1pf(expf(-z)) : z - log1pf(expf(z));
        float log_q = z >= 0 ? -z - log1pf(expf(-z)) : -log1pf(expf(z));
        float p = expf(log_p), q = expf(log_q);
        /* pt: probability given to the true class; u = 1 - pt */
        float log_pt = y > 0 ? log_p : log_q, u = y > 0 ? q : p;
        float bce = -log_pt;
        float focal = powf(u, gamma) * bce;
        total += bce + focal_weight * focal;
        if (dlogits) {
            /* d bce/dz = p - y; d focal/dz = s * (gamma u^gamma pt log pt ... ) with
             * s = +1 for y = 1 seen through pt = p, and the mirror for y = 0:
             * dfocal/dpt = -gamma u^(gamma-1) * (-1) * log_pt ... written out: */
            float pt = 1.0f - u;
            float dfocal_dpt = gamma * (gamma > 0 ? powf(u, gamma - 1.0f) : 0.0f) * log_pt -
                               powf(u, gamma) / (pt > 1e-30f ? pt : 1e-30f);
            float dpt_dz = (y > 0 ? 1.0f : -1.0f) * p * q;
            float g = (p - y) + focal_weight * dfocal_dpt * dpt_dz;
            dlogits[i] = g / (float)n;
        }
    }
    return total / (double)n;
}

/* ---- file ---- */

void ad_head_path(char *out, size_t outlen, const char *model_path)
{
    size_t len = strlen(model_path);
    const char *suffix = ".safetensors";
    size_t sl = strlen(suffix);
    if (len > sl && !strcmp(model_path + len - sl, suffix))
        snprintf(out, outlen, "%.*s.head.safetensors", (int)(len - sl), model_path);
    else
        snprintf(out, outlen, "%s.head.safetensors", model_path);
}

/* The tensors of a head file: the parameters, then a zscore head's frame
 * statistics of size h x w. */
static void file_table(const ad_head *hd, int h, int w, ad_param_table *ft)
{
    for (int i = 0; i < hd->table.count; i++) {
        const ad_param_info *e = &hd->table.entries[i];
        ad_param_table_add(ft, e->name, e->ndim, e->shape);
    }
    if (hd->hp.zscore) {
        int shape[3] = {hd->hp.image_channels, h, w};
        ad_param_table_add(ft, FRAME_MEAN, 3, shape);
        ad_param_table_add(ft, FRAME_STD, 3, shape);
    }
}

int ad_head_save(const char *path, const ad_head *hd, const float *params,
                 const char *const *keys, const char *const *values, int n,
                 char *err, size_t errlen)
{
    if (hd->hp.zscore && !hd->frame_mean)
        return ad_err(err, errlen, "%s: the head reads z-scores but has no frame statistics to save",
                      path);
    char ch[16], base[16], groups[16], levels[16];
    snprintf(ch, sizeof ch, "%d", hd->hp.image_channels);
    snprintf(base, sizeof base, "%d", hd->hp.base_channels);
    snprintf(groups, sizeof groups, "%d", hd->hp.groups);
    snprintf(levels, sizeof levels, "%d", hd->hp.levels);
    const char *ak[] = {AD_META_FORMAT, "anomalyd.head.image_channels", "anomalyd.head.base_channels",
                        "anomalyd.head.groups", "anomalyd.head.levels", "anomalyd.head.zscore",
                        "anomalyd.head.detail"};
    const char *av[] = {HEAD_FORMAT, ch, base, groups, levels, hd->hp.zscore ? "1" : "0",
                        hd->hp.detail ? "1" : "0"};
    ad_param_table ft = {0};
    file_table(hd, hd->stats_h, hd->stats_w, &ft);
    size_t np = hd->table.num_params, stats = (ft.num_params - np) / 2;
    float *data = ad_xmalloc(sizeof(float) * ft.num_params);
    memcpy(data, params, sizeof(float) * np);
    if (stats) {
        memcpy(data + np, hd->frame_mean, sizeof(float) * stats);
        memcpy(data + np + stats, hd->frame_std, sizeof(float) * stats);
    }
    int rc = ad_param_table_save(path, &ft, data, ak, av, (int)(sizeof ak / sizeof ak[0]), keys, values,
                                 n, err, errlen);
    free(data);
    ad_param_table_free(&ft);
    return rc;
}

/* *out = metadata key's integer in lo..hi when the file has the key (else
 * *out is left as it is). */
static int optional_int(const ad_safetensors *st, const char *path, const char *key, int lo, int hi,
                        int *out, char *err, size_t errlen)
{
    if (!ad_safetensors_meta(st, key)) return 0;
    return ad_safetensors_meta_int(st, path, key, lo, hi, HEAD_HINT, out, err, errlen);
}

/* The architecture in a head file's metadata; ad_head_create checks the rest. */
static int read_hparams(const char *path, const ad_safetensors *st, ad_head_hparams *hp, char *err,
                        size_t errlen)
{
    const char *format = ad_safetensors_meta(st, AD_META_FORMAT);
    if (!format || strcmp(format, HEAD_FORMAT))
        return ad_err(err, errlen, "%s: not an anomalyd head file (metadata %s is '%s', expected '%s')",
                      path, AD_META_FORMAT, format ? format : "missing", HEAD_FORMAT);
    if (ad_safetensors_meta_int(st, path, "anomalyd.head.image_channels", 1, 3, HEAD_HINT,
                                &hp->image_channels, err, errlen) ||
        ad_safetensors_meta_int(st, path, "anomalyd.head.base_channels", 1, 1024, HEAD_HINT,
                                &hp->base_channels, err, errlen) ||
        ad_safetensors_meta_int(st, path, "anomalyd.head.groups", 1, 1024, HEAD_HINT, &hp->groups,
                                err, errlen))
        return -1;
    /* heads written before the depth was a setting have 3 levels, those
     * written before z-scores or the detail input read neither */
    int zscore = 0, detail = 0;
    hp->levels = 3;
    if (optional_int(st, path, "anomalyd.head.levels", 2, AD_HEAD_MAX_LEVELS, &hp->levels, err, errlen) ||
        optional_int(st, path, "anomalyd.head.zscore", 0, 1, &zscore, err, errlen) ||
        optional_int(st, path, "anomalyd.head.detail", 0, 1, &detail, err, errlen))
        return -1;
    hp->zscore = zscore;
    hp->detail = detail;
    return 0;
}

/* The size of a zscore head's frame statistics, from head.frame_mean (C, H,
 * W); ad_param_table_check then holds head.frame_std to the same shape. */
static int frame_stats_size(const char *path, const ad_safetensors *st, int channels, int *h, int *w,
                            char *err, size_t errlen)
{
    const ad_st_tensor *t = ad_safetensors_find(st, FRAME_MEAN);
    if (!t)
        return ad_err(err, errlen, "%s: tensor '" FRAME_MEAN "' is missing (metadata "
                      "anomalyd.head.zscore is 1: the head reads z-scores against its frame "
                      "statistics)", path);
    if (t->ndim != 3 || t->shape[0] != channels || t->shape[1] < 1 || t->shape[1] > MAX_STATS_SIDE ||
        t->shape[2] < 1 || t->shape[2] > MAX_STATS_SIDE)
        return ad_err(err, errlen, "%s: tensor '" FRAME_MEAN "' must have shape [%d, H, W] (the "
                      "image channels by the model input size, sides 1..%d)", path, channels,
                      MAX_STATS_SIDE);
    *h = (int)t->shape[1];
    *w = (int)t->shape[2];
    return 0;
}

int ad_head_load(const char *path, ad_head **out, char *err, size_t errlen)
{
    *out = NULL;
    ad_safetensors st;
    ad_head_hparams hp;
    ad_head *hd = NULL;
    ad_param_table ft = {0};
    float *data = NULL;
    char sub[AD_ERRLEN];
    int sh = 0, sw = 0;
    if (ad_safetensors_read(path, &st, err, errlen)) return -1;
    if (read_hparams(path, &st, &hp, err, errlen)) goto fail;
    if (ad_head_create(&hd, &hp, sub, sizeof sub)) {
        ad_err(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    if (hp.zscore && frame_stats_size(path, &st, hp.image_channels, &sh, &sw, err, errlen)) goto fail;
    file_table(hd, sh, sw, &ft);
    if (ad_param_table_check(&ft, path, &st, err, errlen)) goto fail;
    data = ad_xmalloc(sizeof(float) * ft.num_params);
    if (ad_param_table_copy(&ft, path, &st, data, err, errlen)) goto fail;
    size_t np = hd->table.num_params, stats = (ft.num_params - np) / 2;
    memcpy(hd->params, data, sizeof(float) * np);
    const float *mean = data + np, *sd = mean + stats;
    for (size_t k = 0; k < stats; k++)
        if (sd[k] < 0) {
            size_t plane = (size_t)sh * sw;
            ad_err(err, errlen, "%s: tensor '" FRAME_STD "' is %g at channel %zu, row %zu, column %zu; "
                   "a standard deviation cannot be negative", path, sd[k], k / plane,
                   k % plane / sw, k % sw);
            goto fail;
        }
    if (hp.zscore) ad_head_set_frame_stats(hd, mean, sd, sh, sw);
    free(data);
    ad_param_table_free(&ft);
    ad_safetensors_free(&st);
    *out = hd;
    return 0;
fail:
    free(data);
    ad_param_table_free(&ft);
    ad_safetensors_free(&st);
    ad_head_free(hd);
    return -1;
}
