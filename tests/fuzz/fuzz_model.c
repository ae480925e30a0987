/* libFuzzer harness for the model loaders: safetensors parsing, the
 * architecture read from __metadata__, the full model load (through a file
 * in /dev/shm, as the daemon reads models from files) and the head loader.
 * A hostile file must be refused with a message, never crash, leak or make
 * the loader allocate more than the limits allow. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anomalyd/head.h"
#include "anomalyd/model.h"
#include "anomalyd/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AD_ERRLEN];
    ad_safetensors st;
    memset(&st, 0, sizeof st);
    if (ad_safetensors_parse("fuzz.safetensors", data, size, &st, err, sizeof err) == 0) {
        ad_unet_hparams hp;
        int T = 0, schedule = 0;
        (void)ad_model_read_hparams("fuzz.safetensors", &st, &hp, &T, &schedule, err, sizeof err);
        ad_safetensors_free(&st);
    } else if (!err[0]) {
        abort(); /* a refusal must say why */
    }

    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/dev/shm/fuzz_model_%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    ad_model *m = NULL;
    if (ad_model_load(path, &m, err, sizeof err) == 0) ad_model_free(m);
    ad_head *h = NULL;
    if (ad_head_load(path, &h, err, sizeof err) == 0) ad_head_free(h);
    unlink(path);
    return 0;
}
