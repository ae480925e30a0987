"""PyTorch reference of the anomalyd UNet (src/nn/unet.c).

Same architecture and the same state_dict names as the C implementation, so a
model file loads on either side. Also a minimal safetensors reader/writer
(float32 only) so the scripts need nothing beyond Debian's python3-torch.
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1).to(torch.float32)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb_s):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb_s)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class Level(nn.Module):
    pass


class UNet(nn.Module):
    def __init__(self, in_channels=1, base_channels=32, channel_mult=(1, 2, 2), res_blocks=1, groups=8):
        super().__init__()
        self.base = base_channels
        tdim = 4 * base_channels
        ch = [base_channels * m for m in channel_mult]
        L = len(ch)
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        cur = base_channels
        for l in range(L):
            lv = Level()
            lv.res = nn.ModuleList()
            for _ in range(res_blocks):
                lv.res.append(ResBlock(cur, ch[l], tdim, groups))
                cur = ch[l]
            if l < L - 1:
                lv.down = nn.Conv2d(cur, cur, 3, stride=2, padding=1)
            self.down.append(lv)
        self.mid = nn.ModuleList([ResBlock(cur, cur, tdim, groups), ResBlock(cur, cur, tdim, groups)])
        ups = [None] * L
        for l in reversed(range(L)):
            lv = Level()
            lv.res = nn.ModuleList()
            for r in range(res_blocks):
                lv.res.append(ResBlock(cur + ch[l] if r == 0 else ch[l], ch[l], tdim, groups))
            cur = ch[l]
            if l > 0:
                lv.up = nn.Conv2d(cur, cur, 3, padding=1)
            ups[l] = lv
        self.up = nn.ModuleList(ups)
        self.norm_out = nn.GroupNorm(groups, cur)
        self.conv_out = nn.Conv2d(cur, in_channels, 3, padding=1)
        self.L = L

    def forward(self, x, t):
        temb = self.time_mlp(timestep_embedding(t, self.base))
        ts = F.silu(temb)
        h = self.conv_in(x)
        skips = []
        for l, lv in enumerate(self.down):
            for rb in lv.res:
                h = rb(h, ts)
            skips.append(h)
            if l < self.L - 1:
                h = lv.down(h)
        for rb in self.mid:
            h = rb(h, ts)
        for l in reversed(range(self.L)):
            lv = self.up[l]
            h = torch.cat([h, skips[l]], dim=1)
            for rb in lv.res:
                h = rb(h, ts)
            if l > 0:
                h = lv.up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


# ---- safetensors (float32) ----

def st_write(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    blobs = []
    for name, t in tensors.items():
        a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(a)]}
        off += len(a)
        blobs.append(a)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def st_read(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(buf[b:e], dtype="<f4").copy()).reshape(info["shape"])
    return out, meta


def arch_metadata(in_channels, base_channels, channel_mult, res_blocks, groups, T=1000, schedule="linear"):
    return {
        "anomalyd.format": "1",
        "anomalyd.in_channels": str(in_channels),
        "anomalyd.base_channels": str(base_channels),
        "anomalyd.channel_mult": ",".join(str(m) for m in channel_mult),
        "anomalyd.res_blocks": str(res_blocks),
        "anomalyd.groups": str(groups),
        "anomalyd.T": str(T),
        "anomalyd.schedule": schedule,
    }


def from_metadata(meta):
    return UNet(int(meta["anomalyd.in_channels"]), int(meta["anomalyd.base_channels"]),
                tuple(int(v) for v in meta["anomalyd.channel_mult"].split(",")),
                int(meta["anomalyd.res_blocks"]), int(meta["anomalyd.groups"]))
