"""PyTorch reference of the anomalyd learned head (src/head/head.c).

Same architecture and the same state_dict names ("head.<unit>.conv.weight",
"head.<unit>.norm.weight", ...) in the same order as the C code, so a head
file written by either side loads in the other. Every unit is a 3x3 conv
followed by GroupNorm+SiLU, except the output conv; the first conv of each
encoder level below the top has stride 2; the decoder upsamples 2x by
nearest neighbour and concatenates [dec a output, enc b output].
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_FORMAT = "anomaly-head-1"


class Unit(nn.Module):
    def __init__(self, cin, cout, stride, groups, norm=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.GroupNorm(groups, cout) if norm else None

    def forward(self, x):
        h = self.conv(x)
        return F.silu(self.norm(h)) if self.norm is not None else h


class Head(nn.Module):
    def __init__(self, image_channels=1, base_channels=16, groups=8, levels=3):
        super().__init__()
        B, L = base_channels, levels
        self.levels = L
        # insertion order = the C tensor order (build() in src/head/head.c)
        units = {}
        for l in range(L):
            ch = B << l
            units[f"enc{l + 1}a"] = (Unit(2 * image_channels + 1, ch, 1, groups) if l == 0
                                     else Unit(ch // 2, ch, 2, groups))
            units[f"enc{l + 1}b"] = Unit(ch, ch, 1, groups)
        for l in reversed(range(L - 1)):
            ch = B << l
            units[f"dec{l + 1}a"] = Unit(2 * ch, ch, 1, groups)
            units[f"dec{l + 1}b"] = Unit(2 * ch, ch, 1, groups)
        units["out"] = Unit(B, 1, 1, groups, norm=False)
        self.head = nn.ModuleDict(units)

    def forward(self, x, x_hat):
        """x, x_hat (N, C, H, W) -> logits (N, 1, H, W)."""
        u = self.head
        diff = (x - x_hat).abs().mean(dim=1, keepdim=True)
        h = torch.cat([x, x_hat, diff], dim=1)
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


def head_metadata(image_channels, base_channels, groups, levels):
    return {
        "anomalyd.format": HEAD_FORMAT,
        "anomalyd.head.image_channels": str(image_channels),
        "anomalyd.head.base_channels": str(base_channels),
        "anomalyd.head.groups": str(groups),
        "anomalyd.head.levels": str(levels),
    }


def head_from_metadata(meta):
    if meta.get("anomalyd.format") != HEAD_FORMAT:
        raise ValueError(f"not an anomalyd head file (anomalyd.format {meta.get('anomalyd.format')!r})")
    # heads written before the depth was a setting have 3 levels
    return Head(int(meta["anomalyd.head.image_channels"]), int(meta["anomalyd.head.base_channels"]),
                int(meta["anomalyd.head.groups"]), int(meta.get("anomalyd.head.levels", 3)))
