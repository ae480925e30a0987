"""PyTorch reference of the anomalyd learned head (src/head/head.c).

Same architecture and the same state_dict names ("head.<unit>.conv.weight",
"head.<unit>.norm.weight", ...) in the same order as the C code, so a head
file written by either side loads in the other. Every unit is a 3x3 conv
followed by GroupNorm+SiLU, except the output conv; the first conv of each
encoder level below the top has stride 2; the decoder upsamples 2x by
nearest neighbour and concatenates [dec a output, enc b output].

A zscore head also reads z, the frame's per-pixel z-score against the good
training images (ad_head_zscore), from the statistics it carries as buffers
head.frame_mean and head.frame_std (C, H, W); its input is [x, x_hat, diff, z].
A detail head also reads the frame at twice the size, x2 (N, C, 2H, 2W),
folded 2x2 into 4C channels (pixel_unshuffle): [x, x_hat, diff, fold(x2)].
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_FORMAT = "anomaly-head-1"
# AD_HEAD_ZSCORE_EPS, _MAX and _SCALE (include/anomalyd/head.h)
ZSCORE_EPS, ZSCORE_MAX, ZSCORE_SCALE = 4.0 / 255.0, 8.0, 4.0


class Unit(nn.Module):
    def __init__(self, cin, cout, stride, groups, norm=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(groups, cout) if norm else None

    def forward(self, x):
        h = self.conv(x)
        return F.silu(self.norm(h)) if self.norm is not None else h


class Head(nn.Module):
    def __init__(self, image_channels=1, base_channels=16, groups=8, levels=3, zscore=False,
                 stats_size=None, detail=False):
        """stats_size (H, W): a zscore head's frame statistics size."""
        super().__init__()
        B, L = base_channels, levels
        self.levels = L
        self.zscore = zscore
        self.detail = detail
        cin = (3 if zscore else 2) * image_channels + 1 + (4 * image_channels if detail else 0)
        # insertion order = the C tensor order (build() in src/head/head.c)
        units = {}
        for l in range(L):
            ch = B << l
            units[f"enc{l + 1}a"] = (Unit(cin, ch, 1, groups) if l == 0
                                     else Unit(ch // 2, ch, 2, groups))
            units[f"enc{l + 1}b"] = Unit(ch, ch, 1, groups)
        for l in reversed(range(L - 1)):
            ch = B << l
            units[f"dec{l + 1}a"] = Unit(2 * ch, ch, 1, groups)
            units[f"dec{l + 1}b"] = Unit(2 * ch, ch, 1, groups)
        units["out"] = Unit(B, 1, 1, groups, norm=False)
        self.head = nn.ModuleDict(units)
        if zscore:
            shape = (image_channels,) + tuple(stats_size)
            self.head.register_buffer("frame_mean", torch.zeros(shape))
            self.head.register_buffer("frame_std", torch.ones(shape))

    def zscore_of(self, x):
        """z of frames x (N, C, H, W) at the statistics' size, as ad_head_zscore."""
        sd = torch.sqrt(self.head.frame_std ** 2 + ZSCORE_EPS ** 2)
        return ((x - self.head.frame_mean) / sd).clamp(-ZSCORE_MAX, ZSCORE_MAX) / ZSCORE_SCALE

    def forward(self, x, x_hat, z=None, x2=None):
        """x, x_hat (N, C, H, W) -> logits (N, 1, H, W); a zscore head also
        reads z (N, C, H, W), zscore_of the frame (mirrored as the frame is),
        a detail head x2 (N, C, 2H, 2W)."""
        u = self.head
        diff = (x - x_hat).abs().mean(dim=1, keepdim=True)
        h = torch.cat([x, x_hat, diff] + ([z] if self.zscore else []) +
                      ([F.pixel_unshuffle(x2, 2)] if self.detail else []), dim=1)
        enc = []
        for l in range(self.levels):
            h = u[f"enc{l + 1}b"](u[f"enc{l + 1}a"](h))
            enc.append(h)
        for l in reversed(range(self.levels - 1)):
            a = u[f"dec{l + 1}a"](F.interpolate(h, scale_factor=2, mode="nearest"))
            h = u[f"dec{l + 1}b"](torch.cat([a, enc[l]], dim=1))
        return u["out"](h)


def focal_loss(logits, mask, gamma, focal_weight):
    """Mean BCE + focal_weight * mean focal loss, as ad_head_loss."""
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    p = torch.sigmoid(logits)
    u = torch.where(mask > 0.5, 1 - p, p)  # 1 - probability of the true class
    return torch.mean(bce + focal_weight * u ** gamma * bce)


def head_metadata(image_channels, base_channels, groups, levels, zscore=False, detail=None):
    """detail None: no anomalyd.head.detail key, as files from before it."""
    meta = {
        "anomalyd.format": HEAD_FORMAT,
        "anomalyd.head.image_channels": str(image_channels),
        "anomalyd.head.base_channels": str(base_channels),
        "anomalyd.head.groups": str(groups),
        "anomalyd.head.levels": str(levels),
        "anomalyd.head.zscore": "1" if zscore else "0",
    }
    if detail is not None:
        meta["anomalyd.head.detail"] = "1" if detail else "0"
    return meta


def head_from_metadata(meta, state_dict):
    """The Head a file's metadata describes; state_dict (the file's tensors)
    gives a zscore head's statistics size."""
    if meta.get("anomalyd.format") != HEAD_FORMAT:
        raise ValueError(f"not an anomalyd head file (anomalyd.format {meta.get('anomalyd.format')!r})")
    # heads written before the depth was a setting have 3 levels, before
    # z-scores or the detail input none
    zscore = meta.get("anomalyd.head.zscore", "0") == "1"
    detail = meta.get("anomalyd.head.detail", "0") == "1"
    size = tuple(state_dict["head.frame_mean"].shape[1:]) if zscore else None
    return Head(int(meta["anomalyd.head.image_channels"]), int(meta["anomalyd.head.base_channels"]),
                int(meta["anomalyd.head.groups"]), int(meta.get("anomalyd.head.levels", 3)), zscore,
                size, detail)
