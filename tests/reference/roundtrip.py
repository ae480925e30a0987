#!/usr/bin/env python3
"""Model files cross the C / PyTorch boundary both ways.

1. C writes a freshly initialised model (speed_unet save); PyTorch loads it
   with load_state_dict(strict=True) and both run the same input: outputs
   must agree.
2. PyTorch writes a model (reference module, random weights); C loads it
   with ad_model_load (full validation) and runs the same input.

    /usr/bin/python3 tests/reference/roundtrip.py BUILD_DIR

Prints the largest relative difference for each direction and exits non-zero
if either exceeds 1e-5. Needs torch, so it is not part of ctest.
"""
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet import UNet, arch_metadata, from_metadata, st_read, st_write  # noqa: E402


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    tool = os.path.join(build, "bench", "speed_unet")
    torch.manual_seed(5)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for cin, base, mult, rbs, groups, size in [(1, 16, "1,2,2", 1, 8, 32), (3, 8, "1,2", 2, 4, 24)]:
            # x and t shared by both directions
            x = torch.randn(2, cin, size, size)
            t = torch.tensor([10.0, 700.0])
            data = os.path.join(tmp, "data.safetensors")
            st_write(data, {"x": x, "t": t})

            # 1. C -> PyTorch
            cfile = os.path.join(tmp, "from_c.safetensors")
            subprocess.run([tool, "save", cfile, str(cin), str(base), mult, str(rbs), str(groups), "3"],
                           check=True, stdout=subprocess.DEVNULL)
            sd, meta = st_read(cfile)
            net = from_metadata(meta)
            net.load_state_dict(sd, strict=True)
            out = os.path.join(tmp, "eps.safetensors")
            subprocess.run([tool, "forward", cfile, data, out], check=True)
            with torch.no_grad():
                e1 = rel(st_read(out)[0]["eps"], net(x, t))

            # 2. PyTorch -> C
            net = UNet(cin, base, tuple(int(m) for m in mult.split(",")), rbs, groups)
            pfile = os.path.join(tmp, "from_torch.safetensors")
            meta = arch_metadata(cin, base, tuple(int(m) for m in mult.split(",")), rbs, groups)
            meta["anomalyd.provenance"] = "tests/reference/roundtrip.py"
            st_write(pfile, net.state_dict(), meta)
            subprocess.run([tool, "forward", pfile, data, out], check=True)
            with torch.no_grad():
                e2 = rel(st_read(out)[0]["eps"], net(x, t))
            print(f"in {cin} base {base} mult {mult} res_blocks {rbs} groups {groups} {size}x{size}: "
                  f"C->torch rel diff {e1:.2e}, torch->C rel diff {e2:.2e}")
            ok = ok and e1 < 1e-5 and e2 < 1e-5
    print("roundtrip", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
