/* Layer kernels of the UNet, forward and backward (llm.c style).
 *
 * Conventions: all tensors NCHW float32, contiguous. Outputs first, then
 * inputs, then weights, then sizes. Forward overwrites its outputs; backward
 * ACCUMULATES (+=) into input and parameter gradients, so callers zero them
 * first (a NULL input-gradient pointer skips that part). Every fast kernel has
 * a plain-loop `_ref` twin that the tests compare it against.
 *
 * Threads: conv kernels call OpenBLAS sgemm (threaded by OpenBLAS itself);
 * element-wise kernels may use OpenMP but never around an sgemm call. */
#ifndef ANOMALYD_NN_LAYERS_H
#define ANOMALYD_NN_LAYERS_H

#include <stddef.h>

/* ---- conv2d: square kernel k (1 or 3), stride s (1 or 2), padding p ----
 * in is (N,C,H,W), w is (OC,C,k,k), b is (OC) or NULL, out is (N,OC,Ho,Wo)
 * with Ho = (H + 2p - k) / s + 1. */
static inline int ad_conv_out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

typedef struct ad_conv_shape {
    int n, c, h, w;       /* input */
    int oc, k, stride, pad;
} ad_conv_shape;

/* Floats of workspace the fast conv needs for this shape (forward and
 * backward); 0 when it needs none. */
size_t ad_conv2d_workspace(const ad_conv_shape *s);
void ad_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                       const ad_conv_shape *s, float *work);
void ad_conv2d_backward(float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, const ad_conv_shape *s, float *work);
/* Winograd F(4x4,3x3) for k=3, stride 1, pad 1 (when ad_conv2d_winograd_ok),
 * on `threads` OpenMP threads (workspace sized for that many).
 * flip = 0: out (=, + b) = conv(in, w). flip = 1: the input gradient of that
 * layer: in is (N,OC,H,W), out (N,C,H,W), weights used transposed and rotated.
 * accumulate = 1 adds into out (b ignored). */
int ad_conv2d_winograd_ok(const ad_conv_shape *s);
size_t ad_conv2d_winograd_workspace(const ad_conv_shape *s, int threads);
void ad_conv2d_winograd(float *out, const float *in, const float *w, const float *b,
                        const ad_conv_shape *s, float *work, int flip, int accumulate, int threads);
/* Weight gradient of the same layer by Winograd (dw += ...), workspace
 * sized by ad_conv2d_winograd_dw_workspace. Bias gradient not included. */
size_t ad_conv2d_winograd_dw_workspace(const ad_conv_shape *s, int threads);
void ad_conv2d_winograd_dw(float *dw, const float *dout, const float *in, const ad_conv_shape *s, float *work,
                           int threads);
void ad_conv2d_forward_ref(float *out, const float *in, const float *w, const float *b,
                           const ad_conv_shape *s);
void ad_conv2d_backward_ref(float *din, float *dw, float *db, const float *dout,
                            const float *in, const float *w, const ad_conv_shape *s);

/* ---- GroupNorm (eps 1e-5) optionally fused with SiLU ----
 * in, out are (N,C,HW); gamma, beta (C); mean, rstd (N,G) are saved for
 * backward. With silu != 0, out = silu(groupnorm(in)). Backward recomputes
 * the normalized values from in, mean, rstd (nothing else is stored). */
#define AD_GN_EPS 1e-5f
void ad_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                          const float *gamma, const float *beta,
                          int n, int c, int hw, int groups, int silu);
void ad_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *mean, const float *rstd,
                           const float *gamma, const float *beta,
                           int n, int c, int hw, int groups, int silu);
void ad_groupnorm_forward_ref(float *out, float *mean, float *rstd, const float *in,
                              const float *gamma, const float *beta,
                              int n, int c, int hw, int groups, int silu);

/* ---- SiLU: out = x * sigmoid(x); in, out have n elements ---- */
void ad_silu_forward(float *out, const float *in, size_t n);
void ad_silu_backward(float *din, const float *dout, const float *in, size_t n);

/* ---- Linear: in is (N,IN), w is (OUT,IN) as in PyTorch, b (OUT), out (N,OUT) ---- */
void ad_linear_forward(float *out, const float *in, const float *w, const float *b,
                       int n, int in_f, int out_f);
void ad_linear_backward(float *din, float *dw, float *db, const float *dout,
                        const float *in, const float *w, int n, int in_f, int out_f);

/* ---- nearest 2x upsample: in (N,C,H,W), out (N,C,2H,2W) ---- */
void ad_upsample2x_forward(float *out, const float *in, int n, int c, int h, int w);
void ad_upsample2x_backward(float *din, const float *dout, int n, int c, int h, int w);

/* ---- channel concat: a (N,CA,HW), b (N,CB,HW), out (N,CA+CB,HW) ---- */
void ad_concat_forward(float *out, const float *a, const float *b, int n, int ca, int cb, int hw);
void ad_concat_backward(float *da, float *db, const float *dout, int n, int ca, int cb, int hw);

/* ---- residual add: out = a + b (n elements); backward is da += d, db += d ---- */
void ad_add_forward(float *out, const float *a, const float *b, size_t n);
void ad_add_backward(float *dx, const float *dout, size_t n);

/* ---- per-channel bias broadcast: x (N,C,HW) += v (N,C); backward dv += sum_hw ---- */
void ad_add_channel_forward(float *x, const float *v, int n, int c, int hw);
void ad_add_channel_backward(float *dv, const float *dx, int n, int c, int hw);

/* ---- sinusoidal time embedding: t (N) -> out (N,dim), dim even >= 4:
 * out[:, i] = sin(t f_i), out[:, half+i] = cos(t f_i), f_i = 10000^(-i/half) ---- */
void ad_time_embedding(float *out, const float *t, int n, int dim);

#endif
