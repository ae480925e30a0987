/* libFuzzer harness for training checkpoints (`anomalyctl train --resume`):
 * the bytes go through a file in /dev/shm into ad_checkpoint_load for a tiny
 * architecture (base 4, one level, groups 2, the seed corpus's). A hostile
 * file must be refused with a message, never crash or leak; an accepted one
 * must leave a state a run can continue from. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/config.h"
#include "anomalyd/unet.h"
#include "anomalyd/util.h"
#include "../../src/diffusion/train_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ad_config cfg;
    static ad_unet_hparams hp;
    static ad_train_arrays a;
    static char path[64];
    char err[AD_ERRLEN];
    if (!path[0]) {
        snprintf(path, sizeof path, "/dev/shm/fuzz_checkpoint_%d.ckpt", (int)getpid());
        ad_config_defaults(&cfg);
        cfg.model.input_width = cfg.model.input_height = 64;
        cfg.train.batch = 1;
        cfg.train.crop = 16;
        hp = (ad_unet_hparams){.in_channels = 1, .base_channels = 4, .num_levels = 1,
                               .channel_mult = {1}, .res_blocks = 1, .groups = 2};
        if (ad_unet_count_params(&hp, &a.n, err, sizeof err) != 0) abort();
        a.params = ad_xmalloc(a.n * sizeof(float));
        a.ema = ad_xmalloc(a.n * sizeof(float));
        a.m = ad_xmalloc(a.n * sizeof(float));
        a.v = ad_xmalloc(a.n * sizeof(float));
        ad_log_set_level(AD_LOG_ERR); /* mismatch warnings are expected */
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    ad_dataset ds = {.n = 60};
    ad_train_state st;
    err[0] = 0;
    if (ad_checkpoint_load(path, &cfg, &hp, &ds, &st, &a, err, sizeof err) == 0) {
        if (st.step < 0 || st.adam_step < 0) abort();
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }
    unlink(path);
    return 0;
}
