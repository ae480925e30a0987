#!/usr/bin/env python3
"""PyTorch CPU side of bench/speed.sh: the same UNet (tests/reference/unet.py)
and learned head (tests/reference/head.py) with the same weights, loaded from
the files the C side uses (the head from MODEL's head path, as ad_head_path).

    speed_torch.py infer MODEL H W THREADS REPS   -> ms=, cpu_ms=
    speed_torch.py train MODEL THREADS STEPS      -> train_ms_per_step=, train_samples_per_s=
    speed_torch.py inspect MODEL H W THREADS REPS [FH FW] -> recon_ms=, head_ms=, ms= (+ *_cpu_ms)
    speed_torch.py headtrain MODEL CROP THREADS STEPS -> recon_ms=, head_step_ms= (+ *_cpu_ms)

inspect times, as medians over REPS after one warm-up, the one-step
reconstruction (noise to t0 = 0.2 T, one UNet evaluation, x0, clamp), the
head's forward at the model input HxW, and the whole recipe on an FHxFW
frame: area resize to HxW, reconstruction, z for a head that reads z-scores,
the head on the frame and on its three mirror images (detector.mirror: all;
z mirrored with the frame), sigmoid, the probabilities
mirrored back and averaged, no smoothing (detector.sigma 0) and max. headtrain times one
step of the head on a fixed batch of 8 CROPxCROP crops (and z; forward, BCE + focal
loss, backward, clip 1, AdamW, EMA), and apart the eight one-step
reconstructions, one crop at a time as the C trainer makes them.
"""
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from head import focal_loss, head_from_metadata  # noqa: E402
from unet import from_metadata, st_read  # noqa: E402

NOISE_LEVEL, MIRRORS = 0.2, ([], [3], [2], [2, 3])  # the detector's defaults (mirror: all)
HEAD_BATCH = 8


def load(path):
    sd, meta = st_read(path)
    net = from_metadata(meta)
    net.load_state_dict(sd, strict=True)
    return net, meta


def load_head(model):
    suffix = ".safetensors"
    stem = model[:-len(suffix)] if model.endswith(suffix) and len(model) > len(suffix) else model
    sd, meta = st_read(stem + ".head.safetensors")
    net = head_from_metadata(meta, sd)
    net.load_state_dict(sd, strict=True)
    return net


def timed(fn, reps):
    """Median wall ms of reps calls after one warm-up call, and mean process CPU ms."""
    fn()
    times = []
    c0 = time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times), 1e3 * (time.process_time() - c0) / reps


def one_step_recon(unet, meta):
    """x -> x_hat: noise to t0, one UNet evaluation, the x0 prediction, clamped
    (the schedule's values do not change the timing)."""
    T = int(meta.get("anomalyd.T", 1000))
    t0 = max(0, min(T - 1, round(NOISE_LEVEL * T) - 1))
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0)[t0].item()
    sa, s1a = math.sqrt(abar), math.sqrt(1 - abar)
    t = torch.tensor([float(t0)])
    g = torch.Generator().manual_seed(2)

    def recon(x):
        xt = sa * x + s1a * torch.randn(x.shape, generator=g)
        return ((xt - s1a * unet(xt, t)) / sa).clamp(-1, 1)
    return recon


def infer(path, h, w, threads, reps):
    torch.set_num_threads(threads)
    net, meta = load(path)
    net.eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, int(meta["anomalyd.in_channels"]), h, w, generator=g)
    t = torch.tensor([250.0])
    with torch.no_grad():
        ms, cpu = timed(lambda: net(x, t), reps)
    print(f"ms={ms:.2f}\ncpu_ms={cpu:.2f}")


def train(path, threads, steps):
    torch.set_num_threads(threads)
    net, meta = load(path)
    c = int(meta["anomalyd.in_channels"])
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    times = []
    cpu = 0.0
    for s in range(steps + 1):
        x = torch.randn(8, c, 64, 64, generator=g)
        target = torch.randn(8, c, 64, 64, generator=g)
        t = torch.randint(0, 1000, (8,), generator=g).float()
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = torch.mean((net(x, t) - target) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if s:
            times.append(1e3 * (time.perf_counter() - t0))
            cpu += 1e3 * (time.process_time() - c0)
    med = statistics.median(times)
    print(f"train_cpu_ms_per_step={cpu / steps:.1f}")
    print(f"train_ms_per_step={med:.1f}\ntrain_samples_per_s={8e3 / med:.1f}")


def inspect(path, h, w, threads, reps, fh, fw):
    torch.set_num_threads(threads)
    unet, meta = load(path)
    head = load_head(path)
    unet.eval()
    head.eval()
    recon = one_step_recon(unet, meta)
    g = torch.Generator().manual_seed(1)
    frame = torch.rand(1, int(meta["anomalyd.in_channels"]), fh, fw, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(frame, size=(h, w), mode="area")

    def flip(t, dims):
        return t.flip(dims) if dims else t

    def z_of(xi):
        return head.zscore_of(xi) if head.zscore else None

    def x2_of():  # a detail head's frame at twice the input size
        return torch.nn.functional.interpolate(frame, size=(2 * h, 2 * w), mode="area") if head.detail else None

    def whole():
        xi = torch.nn.functional.interpolate(frame, size=(h, w), mode="area")
        xh = recon(xi)
        z = z_of(xi)
        x2 = x2_of()
        p = sum(flip(torch.sigmoid(head(flip(xi, d), flip(xh, d), flip(z, d) if head.zscore else None,
                                        flip(x2, d) if head.detail else None)), d)
                for d in MIRRORS)
        return (p / len(MIRRORS)).max().item()
    with torch.no_grad():
        x_hat = recon(x)
        z = z_of(x)
        x2 = x2_of()
        recon_ms, recon_cpu = timed(lambda: recon(x), reps)
        head_ms, head_cpu = timed(lambda: head(x, x_hat, z, x2), reps)
        ms, cpu = timed(whole, reps)
    print(f"recon_ms={recon_ms:.2f}\nrecon_cpu_ms={recon_cpu:.2f}\nhead_ms={head_ms:.2f}\n"
          f"head_cpu_ms={head_cpu:.2f}\nms={ms:.2f}\ncpu_ms={cpu:.2f}")


def headtrain(path, crop, threads, steps):
    torch.set_num_threads(threads)
    unet, meta = load(path)
    head = load_head(path)
    unet.eval()
    recon = one_step_recon(unet, meta)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(HEAD_BATCH, int(meta["anomalyd.in_channels"]), crop, crop, generator=g) * 2 - 1
    mask = (torch.rand(HEAD_BATCH, 1, crop, crop, generator=g) < 0.05).float()
    z = 0.5 * torch.randn(x.shape, generator=g) if head.zscore else None
    x2 = torch.rand(HEAD_BATCH, x.shape[1], 2 * crop, 2 * crop, generator=g) * 2 - 1 if head.detail else None
    with torch.no_grad():
        def recon_crops():
            return torch.cat([recon(x[b:b + 1]) for b in range(HEAD_BATCH)])
        x_hat = recon_crops()
        recon_ms, recon_cpu = timed(recon_crops, steps)
    params = list(head.parameters())
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    ema = [p.detach().clone() for p in params]

    def step():  # as src/head/head_train.c: focal gamma 2, weight 5; clip 1; EMA 0.999
        opt.zero_grad()
        focal_loss(head(x, x_hat, z, x2), mask, 2.0, 5.0).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(0.999).add_(p, alpha=0.001)
    step_ms, step_cpu = timed(step, steps)
    print(f"recon_ms={recon_ms:.1f}\nrecon_cpu_ms={recon_cpu:.1f}\nhead_step_ms={step_ms:.1f}\n"
          f"head_step_cpu_ms={step_cpu:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "infer":
        infer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "inspect":
        h, w = int(sys.argv[3]), int(sys.argv[4])
        fh, fw = (int(sys.argv[7]), int(sys.argv[8])) if len(sys.argv) > 8 else (h, w)
        inspect(sys.argv[2], h, w, int(sys.argv[5]), int(sys.argv[6]), fh, fw)
    elif sys.argv[1] == "headtrain":
        headtrain(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: speed_torch.py infer|train|inspect|headtrain ...")
