/* Binds the sampler to the UNet: the noise predictor is ad_unet_forward. */
#include "anomalyd/diffusion.h"

#include "anomalyd/util.h"

static void unet_eps(void *user, float *eps, const float *x, const float *t, int n, int h, int w)
{
    ad_unet_forward(user, eps, x, t, n, h, w);
}

int ad_sampler_create(ad_sampler **out, ad_unet *unet, const ad_noise_schedule *s,
                      int c, int h, int w, char *err, size_t errlen)
{
    *out = NULL;
    if (!unet) return ad_err(err, errlen, "sampler: no model");
    const ad_unet_hparams *hp = ad_unet_hp(unet);
    if (c != hp->in_channels)
        return ad_err(err, errlen, "sampler: the model takes %d channel(s), the input has %d",
                      hp->in_channels, c);
    int m = ad_unet_size_multiple(unet);
    if (h % m || w % m)
        return ad_err(err, errlen,
                      "sampler: input %dx%d is not a multiple of %d in both sides, which "
                      "this model's %d levels need", w, h, m, hp->num_levels);
    if (ad_unet_reserve(unet, 1, h, w, false, err, errlen) != 0) return -1;
    return ad_sampler_create_fn(out, unet_eps, unet, s, c, h, w, err, errlen);
}
