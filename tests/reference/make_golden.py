#!/usr/bin/env python3
"""Writes golden tensors for tests/test_unet.c and tests/test_head.c into
fixtures/golden/.

For each tiny configuration: a model file (weights + architecture metadata,
loadable by ad_model_load) and a data file with the inputs x, t, target, the
output eps, the MSE loss, every parameter gradient ("grad.<name>"), the
gradient of the loss w.r.t. x ("dx"), the global grad norm, and the losses
and final weights of 3 AdamW steps (with grad-norm clipping) on that batch.

For each tiny learned head: a head file (loadable by ad_head_load) and a data
file with x, x_hat, a defect mask, the logits, the training loss (BCE +
focal, as ad_head_loss) and every parameter gradient of that loss; for the
zscore head also its frame statistics (in the head file) and z, for the
detail head the frame at twice the size, x2.

    /usr/bin/python3 tests/reference/make_golden.py [outdir [name...]]

With names, only those fixtures are written (the others stay as committed:
another PyTorch version may round their data differently).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from head import Head, focal_loss, head_metadata  # noqa: E402
from unet import UNet, arch_metadata, st_write  # noqa: E402

CONFIGS = [
    # name, in_channels, base, mult, res_blocks, groups, n, h, w
    ("tiny_gray", 1, 8, (1, 2), 1, 4, 2, 16, 16),
    ("tiny_rgb", 3, 8, (1, 2), 1, 4, 2, 16, 16),
    ("tiny_deep", 1, 8, (1, 2, 2), 2, 2, 1, 16, 8),
]
HEAD_CONFIGS = [
    # name, image_channels, base, groups, levels, zscore, detail, n, h, w
    ("tiny_head_gray", 1, 4, 2, 4, False, False, 2, 32, 32),
    ("tiny_head_rgb", 3, 4, 2, 3, False, False, 1, 16, 24),
    ("tiny_head_zscore", 3, 4, 2, 3, True, False, 2, 16, 24),
    ("tiny_head_detail", 3, 4, 2, 3, False, True, 2, 16, 24),
]
FOCAL = dict(gamma=2.0, focal_weight=5.0)
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
CLIP = 1.0


def perturb_norms(net):
    """Makes the norms non-trivial so their gradients are tested properly."""
    with torch.no_grad():
        for k, p in net.named_parameters():
            if "norm" in k:
                p.add_(0.1 * torch.randn_like(p))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "golden")
    only = set(sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name, cin, base, mult, rbs, groups, n, h, w in CONFIGS:
        if only and name not in only:
            continue
        torch.manual_seed(1234)
        net = UNet(cin, base, mult, rbs, groups)
        perturb_norms(net)
        meta = arch_metadata(cin, base, mult, rbs, groups)
        meta["anomalyd.provenance"] = "golden fixture from tests/reference/make_golden.py"
        st_write(os.path.join(out, name + ".safetensors"), net.state_dict(), meta)

        x = torch.randn(n, cin, h, w)
        t = torch.tensor([float((137 * (i + 1)) % 1000) for i in range(n)])
        target = torch.randn(n, cin, h, w)
        xg = x.clone().requires_grad_(True)
        eps = net(xg, t)
        loss = torch.mean((eps - target) ** 2)
        loss.backward()
        data = {"x": x, "t": t, "target": target, "eps": eps.detach(), "loss": loss.detach().reshape(1),
                "dx": xg.grad}
        for k, p in net.named_parameters():
            data["grad." + k] = p.grad.clone()
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in net.parameters())).float()
        data["grad_norm"] = norm.reshape(1)

        opt = torch.optim.AdamW(net.parameters(), **ADAM)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            l = torch.mean((net(x, t) - target) ** 2)
            l.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            opt.step()
            losses.append(l.item())
        losses.append(torch.mean((net(x, t) - target) ** 2).item())
        data["adam_losses"] = torch.tensor(losses)
        for k, p in net.named_parameters():
            data["after." + k] = p.detach().clone()
        st_write(os.path.join(out, name + ".data.safetensors"), data,
                 {"lr": ADAM["lr"], "beta1": ADAM["betas"][0], "beta2": ADAM["betas"][1],
                  "eps": ADAM["eps"], "weight_decay": ADAM["weight_decay"], "clip": CLIP,
                  "n": n, "h": h, "w": w})
        print(f"{name}: params {sum(p.numel() for p in net.parameters())} loss {loss.item():.6f} "
              f"adam {losses}")
    for name, cin, base, groups, levels, zscore, detail, n, h, w in HEAD_CONFIGS:
        if not only or name in only:
            head_golden(out, name, cin, base, groups, levels, zscore, detail, n, h, w)


def head_golden(out, name, cin, base, groups, levels, zscore, detail, n, h, w):
    torch.manual_seed(4321)
    net = Head(cin, base, groups, levels, zscore, (h, w), detail)
    perturb_norms(net)
    if zscore:
        # spreads from none (the eps floor) to wide, means that leave some
        # pixels beyond the clamp
        with torch.no_grad():
            net.head.frame_mean.copy_(torch.rand(cin, h, w) * 1.6 - 0.8)
            net.head.frame_std.copy_(torch.rand(cin, h, w) * 0.3 * (torch.rand(cin, h, w) > 0.2))
    # the older fixtures were written before the detail key
    meta = head_metadata(cin, base, groups, levels, zscore, True if detail else None)
    meta["anomalyd.provenance"] = "golden fixture from tests/reference/make_golden.py"
    st_write(os.path.join(out, name + ".safetensors"), net.state_dict(), meta)

    x = torch.rand(n, cin, h, w) * 2 - 1
    x_hat = (x + 0.3 * torch.randn(n, cin, h, w)).clamp(-1, 1)
    mask = (torch.rand(n, 1, h, w) < 0.2).float()
    z = net.zscore_of(x) if zscore else None
    x2 = torch.rand(n, cin, 2 * h, 2 * w) * 2 - 1 if detail else None
    logits = net(x, x_hat, z, x2)
    loss = focal_loss(logits, mask, **FOCAL)
    loss.backward()
    data = {"x": x, "x_hat": x_hat, "mask": mask, "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    if zscore:
        data["z"] = z
    if detail:
        data["x2"] = x2
    for k, p in net.named_parameters():
        data["grad." + k] = p.grad.clone()
    st_write(os.path.join(out, name + ".data.safetensors"), data, dict(FOCAL, n=n, h=h, w=w))
    print(f"{name}: params {sum(p.numel() for p in net.parameters())} loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
