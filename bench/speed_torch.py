#!/usr/bin/env python3
"""PyTorch CPU side of bench/speed.sh: the same UNet (tests/reference/unet.py)
with the same weights (loaded from the model file the C side uses).

    speed_torch.py infer MODEL H W THREADS REPS   -> ms=
    speed_torch.py train MODEL THREADS STEPS      -> train_ms_per_step=, train_samples_per_s=
"""
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from unet import from_metadata, st_read  # noqa: E402


def load(path):
    sd, meta = st_read(path)
    net = from_metadata(meta)
    net.load_state_dict(sd, strict=True)
    return net, int(meta["anomalyd.in_channels"])


def infer(path, h, w, threads, reps):
    torch.set_num_threads(threads)
    net, c = load(path)
    net.eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, c, h, w, generator=g)
    t = torch.tensor([250.0])
    times = []
    with torch.no_grad():
        net(x, t)
        c0 = time.process_time()
        for _ in range(reps):
            t0 = time.perf_counter()
            net(x, t)
            times.append(1e3 * (time.perf_counter() - t0))
        cpu = 1e3 * (time.process_time() - c0) / reps
    print(f"ms={statistics.median(times):.2f}\ncpu_ms={cpu:.2f}")


def train(path, threads, steps):
    torch.set_num_threads(threads)
    net, c = load(path)
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


if __name__ == "__main__":
    if sys.argv[1] == "infer":
        infer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: speed_torch.py infer|train ...")
