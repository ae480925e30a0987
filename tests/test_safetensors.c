/* safetensors and model-file I/O: round trip, and hostile files that must
 * each be refused with an error naming the problem. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomalyd/config.h"
#include "anomalyd/model.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = ts_tmpdir("safetensors");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_rmtree(dir);
    free(dir);
    return 0;
}

static char *path_in(const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* header JSON + data bytes -> file */
static void write_raw(const char *path, uint64_t hlen_override, const char *header, const void *data, size_t dlen)
{
    size_t hl = strlen(header);
    uint8_t *buf = malloc(8 + hl + dlen);
    uint64_t hlen = hlen_override ? hlen_override : hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen) memcpy(buf + 8 + hl, data, dlen);
    write_bytes(path, buf, 8 + hl + dlen);
    free(buf);
}

static ad_unet *tiny_unet(void)
{
    ad_unet_hparams hp = {1, 4, 2, {1, 2}, 1, 2};
    ad_unet *u = NULL;
    char err[AD_ERRLEN];
    assert_int_equal(ad_unet_create(&u, &hp, err, sizeof(err)), 0);
    ad_unet_init(u, 7);
    return u;
}

static void expect_st_error(const char *path, const char *needle)
{
    ad_safetensors st;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_safetensors_read(path, &st, err, sizeof(err)), -1);
    printf("  refused: %s\n", err);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, path));
}

static void expect_model_error(const char *path, const char *needle)
{
    ad_model *m = (ad_model *)1;
    char err[AD_ERRLEN] = "";
    assert_int_equal(ad_model_load(path, &m, err, sizeof(err)), -1);
    assert_null(m);
    printf("  refused: %s\n", err);
    if (!strstr(err, needle)) fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_roundtrip(void **state)
{
    (void)state;
    ad_unet *u = tiny_unet();
    char *p = path_in("m.safetensors"), err[AD_ERRLEN];
    const char *keys[] = {"anomalyd.train.steps", "anomalyd.train.seed"};
    const char *vals[] = {"300", "1"};
    assert_int_equal(ad_model_save(p, u, ad_unet_params(u), 1000, AD_SCHEDULE_COSINE, keys, vals, 2, err,
                                   sizeof(err)), 0);
    ad_model *m = NULL;
    if (ad_model_load(p, &m, err, sizeof(err)) < 0) fail_msg("%s", err);
    assert_int_equal(m->T, 1000);
    assert_int_equal(m->schedule, AD_SCHEDULE_COSINE);
    const ad_unet_hparams *hp = ad_unet_hp(m->unet);
    assert_int_equal(hp->base_channels, 4);
    assert_int_equal(hp->num_levels, 2);
    assert_int_equal(hp->channel_mult[1], 2);
    assert_int_equal(ad_unet_num_params(m->unet), ad_unet_num_params(u));
    assert_memory_equal(ad_unet_params(m->unet), ad_unet_params(u), sizeof(float) * ad_unet_num_params(u));
    char sha[65];
    assert_int_equal(ad_sha256_file(p, sha, err, sizeof(err)), 0);
    assert_string_equal(m->sha256, sha);
    assert_non_null(strstr(m->provenance, "anomalyd.train.steps=300"));
    ad_model_free(m);

    /* generic reader: metadata pairs and tensor lookup */
    ad_safetensors st;
    assert_int_equal(ad_safetensors_read(p, &st, err, sizeof(err)), 0);
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.channel_mult"), "1,2");
    assert_string_equal(ad_safetensors_meta(&st, "anomalyd.schedule"), "cosine");
    const ad_st_tensor *t = ad_safetensors_find(&st, "conv_in.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->nbytes, 4 * 1 * 9 * 4);
    assert_null(ad_safetensors_find(&st, "nope"));
    ad_safetensors_free(&st);

    /* reserved keys cannot be overridden by provenance */
    const char *bad[] = {"anomalyd.base_channels"};
    assert_int_equal(ad_model_save(p, u, ad_unet_params(u), 1000, 0, bad, vals, 1, err, sizeof(err)), -1);
    free(p);
    ad_unet_free(u);
}

static void test_hostile_container(void **state)
{
    (void)state;
    char *p = path_in("h.safetensors");
    float four[4] = {1, 2, 3, 4};

    write_bytes(p, "\x08\x00\x00", 3);
    expect_st_error(p, "too short");

    write_raw(p, (uint64_t)1 << 63, "{}", NULL, 0);
    expect_st_error(p, "header length 9223372036854775808");

    write_raw(p, 1000, "{}", NULL, 0);
    expect_st_error(p, "header length 1000 is larger than the rest of the file");

    write_raw(p, 0, "{\"a\": {\"dtype\": \"F32\", ", NULL, 0);
    expect_st_error(p, "not valid JSON");

    write_raw(p, 0, "[1, 2]", NULL, 0);
    expect_st_error(p, "must be a JSON object");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", four, 16);
    expect_st_error(p, "not valid JSON");   /* duplicate key */

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", four, 16);
    expect_st_error(p, "overlap");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", four, 16);
    expect_st_error(p, "belong to no tensor");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", four, 16);
    expect_st_error(p, "cover only 8");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", four, 16);
    expect_st_error(p, "outside the 16-byte data buffer");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", four, 16);
    expect_st_error(p, "its shape needs 12");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[0,16]}}", four, 16);
    expect_st_error(p, "dtype F16");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", four, 16);
    expect_st_error(p, "invalid dimension");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}",
              four, 16);
    expect_st_error(p, "shape");

    write_raw(p, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", four, 16);
    expect_st_error(p, "data_offsets");

    write_raw(p, 0, "{\"__metadata__\":{\"k\":5},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
              four, 16);
    expect_st_error(p, "not a string");

    /* a well-formed one parses */
    write_raw(p, 0, "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                    "\"data_offsets\":[0,16]}}", four, 16);
    ad_safetensors st;
    char err[AD_ERRLEN];
    if (ad_safetensors_read(p, &st, err, sizeof(err)) < 0) fail_msg("%s", err);
    assert_int_equal(st.num_tensors, 1);
    assert_string_equal(ad_safetensors_meta(&st, "k"), "v");
    assert_true(((float *)st.data)[3] == 4.0f);
    ad_safetensors_free(&st);
    free(p);
}

/* Writes the tiny model's tensors with one tensor changed by `edit`. */
typedef void (*edit_fn)(ad_st_out *ts, int *n, float *scratch);

static void save_edited(const char *path, edit_fn edit, const char *const *mk, const char *const *mv, int nm)
{
    ad_unet *u = tiny_unet();
    int n = ad_unet_num_tensors(u);
    ad_st_out *ts = calloc((size_t)n + 1, sizeof(ad_st_out));
    for (int i = 0; i < n; i++) {
        const ad_param_info *pi = ad_unet_tensor(u, i);
        ts[i].name = pi->name;
        ts[i].ndim = pi->ndim;
        for (int d = 0; d < pi->ndim; d++) ts[i].shape[d] = pi->shape[d];
        ts[i].data = ad_unet_params(u) + pi->offset;
    }
    float *scratch = calloc(4096, sizeof(float));
    if (edit) edit(ts, &n, scratch);
    const char *keys[] = {"anomalyd.format", "anomalyd.in_channels", "anomalyd.base_channels",
                          "anomalyd.channel_mult", "anomalyd.res_blocks", "anomalyd.groups", "anomalyd.T",
                          "anomalyd.schedule"};
    const char *vals[] = {"1", "1", "4", "1,2", "1", "2", "1000", "linear"};
    const char *k2[16], *v2[16];
    int m = 0;
    for (int i = 0; i < 8; i++) {
        k2[m] = keys[i];
        v2[m] = vals[i];
        for (int j = 0; j < nm; j++)
            if (!strcmp(mk[j], keys[i])) v2[m] = mv[j];
        if (v2[m]) m++;
    }
    char err[AD_ERRLEN];
    assert_int_equal(ad_safetensors_write(path, ts, n, k2, v2, m, err, sizeof(err)), 0);
    free(scratch);
    free(ts);
    ad_unet_free(u);
}

static void edit_nan(ad_st_out *ts, int *n, float *scratch)
{
    (void)n;
    memcpy(scratch, ts[5].data, sizeof(float) * 4);
    scratch[2] = NAN;
    ts[5].data = scratch;
    ts[5].ndim = 1;
    ts[5].shape[0] = 4;
}
static void edit_inf(ad_st_out *ts, int *n, float *scratch)
{
    (void)n;
    scratch[0] = INFINITY;
    ts[3].data = scratch;   /* time_mlp.2.bias, (16) */
}
static void edit_missing(ad_st_out *ts, int *n, float *scratch)
{
    (void)scratch;
    ts[*n - 1] = ts[*n - 2];
    (*n)--;     /* drops conv_out.bias: the last tensor now appears... */
    (*n)--;     /* ...and is removed together with its duplicate */
}
static void edit_extra(ad_st_out *ts, int *n, float *scratch)
{
    ts[*n].name = "bogus.weight";
    ts[*n].ndim = 1;
    ts[*n].shape[0] = 3;
    ts[*n].data = scratch;
    (*n)++;
}
static void edit_shape(ad_st_out *ts, int *n, float *scratch)
{
    (void)n;
    (void)scratch;
    ts[4].shape[0] = 1;     /* conv_in.weight (4,1,3,3) -> (1,4,3,3): same size */
    ts[4].shape[1] = 4;
}

static void test_hostile_models(void **state)
{
    (void)state;
    char *p = path_in("bad.safetensors");
    save_edited(p, NULL, NULL, NULL, 0);
    ad_model *m = NULL;
    char err[AD_ERRLEN];
    if (ad_model_load(p, &m, err, sizeof(err)) < 0) fail_msg("unedited file refused: %s", err);
    ad_model_free(m);

    save_edited(p, edit_nan, NULL, NULL, 0);
    expect_model_error(p, "'conv_in.bias' holds a non-finite value (NaN or Inf) at index 2");
    save_edited(p, edit_inf, NULL, NULL, 0);
    expect_model_error(p, "'time_mlp.2.bias' holds a non-finite value (NaN or Inf) at index 0");
    save_edited(p, edit_missing, NULL, NULL, 0);
    expect_model_error(p, "is missing");
    save_edited(p, edit_extra, NULL, NULL, 0);
    expect_model_error(p, "unexpected tensor 'bogus.weight'");
    save_edited(p, edit_shape, NULL, NULL, 0);
    expect_model_error(p, "'conv_in.weight' has shape [1, 4, 3, 3] but the architecture needs [4, 1, 3, 3]");

    /* absurd or broken architectures */
    struct { const char *key, *value, *needle; } arch[] = {
        {"anomalyd.base_channels", "100000", "anomalyd.base_channels' must be an integer"},
        {"anomalyd.base_channels", "2048", "base_channels must be an even number in 4..256"},
        {"anomalyd.channel_mult", "8,8,8,8,8,8", "architecture"},
        {"anomalyd.channel_mult", "1,2,x", "channel_mult"},
        {"anomalyd.channel_mult", "1,2,2,2,2,2,2", "more than 6 entries"},
        {"anomalyd.groups", "3", "groups (3) must divide"},
        {"anomalyd.in_channels", "2", "in_channels must be 1 or 3"},
        {"anomalyd.res_blocks", "9", "res_blocks must be in 1..4"},
        {"anomalyd.schedule", "quadratic", "linear or cosine"},
        {"anomalyd.format", "7", "format version"},
        {"anomalyd.T", "-5", "anomalyd.T"},
        {"anomalyd.groups", NULL, "'anomalyd.groups' is missing"},
    };
    for (size_t i = 0; i < sizeof(arch) / sizeof(arch[0]); i++) {
        save_edited(p, NULL, &arch[i].key, &arch[i].value, 1);
        expect_model_error(p, arch[i].needle);
    }
    /* the biggest architecture the config allows is refused by the size limit */
    ad_unet_hparams huge = {3, 256, 6, {8, 8, 8, 8, 8, 8}, 4, 64};
    size_t count;
    assert_int_equal(ad_unet_count_params(&huge, &count, err, sizeof(err)), -1);
    printf("  refused: %s\n", err);
    assert_non_null(strstr(err, "more than the limit"));

    /* truncated model file */
    save_edited(p, NULL, NULL, NULL, 0);
    uint8_t *buf;
    size_t len;
    assert_int_equal(ad_read_file(p, 1 << 24, &buf, &len, err, sizeof(err)), 0);
    write_bytes(p, buf, len - 100);
    expect_model_error(p, "outside the");
    write_bytes(p, buf, 20);
    expect_model_error(p, "larger than the rest of the file");
    free(buf);
    expect_model_error("/nonexistent/model.safetensors", "/nonexistent/model.safetensors");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hostile_container),
        cmocka_unit_test(test_hostile_models),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
