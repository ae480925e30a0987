#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_v4l2 (tests/fuzz/corpus/v4l2/): sane
cameras in the harness's input layout (described at the top of
tests/fuzz/fuzz_v4l2.c). Run from the repository root."""
import os
import struct

GREY, RGB3, YUYV, MJPG = 0, 1, 2, 3  # the harness's fourcc table


def u8(v): return struct.pack('<B', v)
def u16(v): return struct.pack('<H', v)
def u32(v): return struct.pack('<I', v)


def camera(channels=1, pixfmt=0, w=64, h=48, formats=((GREY, 0),), grant=0, pad=0,
           sessions=2, grabs=4, frames=2, buffers=4, list_first=False):
    flags = (1 if channels == 3 else 0) | (pixfmt << 1) | (32 if list_first else 0)
    b = u8(flags) + u16(w) + u16(h) + u8(0) + u8(buffers - 2) + u8(sessions - 1) + u8(grabs)
    b += u8(0)                                   # capture + streaming
    b += u8(len(formats)) + b''.join(u8(f) + u8(e) for f, e in formats)
    b += u8(2) + u8(1) + u16(w) + u16(h) + u16(320) + u16(240)   # discrete sizes
    b += u8(2) + u8(1) + u16(1) + u16(30) + u16(1) + u16(15)     # discrete intervals
    b += u8(grant) + u32(0) + u32(0)             # S_FMT: fourcc (0 as asked), size as asked
    b += u8(0) + u16(pad)                        # bytes per line = w * bpp + pad
    b += u8(0)                                   # sizeimage = bpl * h
    b += u8(1) + u32(1) + u32(30)                # G_PARM: settable, 1/30
    b += u8(0)                                   # S_PARM grants what is asked
    b += u8(0)                                   # REQBUFS as asked
    b += u8(0xFF) + u8(0) + u8(0)                # QUERYBUF: sizeimage, index * 4096
    b += u8(0)                                   # no faults
    for g in range(sessions * grabs):            # poll ready; frames complete, in order
        b += u8(0) + u8(frames) + (u8(0) + u8(0) + u8(0) + u8(0)) * frames
    return b


SEEDS = {
    'grey_native.bin': camera(),
    'rgb24_native.bin': camera(channels=3, formats=((RGB3, 0), (GREY, 0))),
    'yuyv_only_gray.bin': camera(formats=((YUYV, 0), (RGB3, 1)), list_first=True),
    'yuyv_only_rgb.bin': camera(channels=3, formats=((YUYV, 0), (MJPG, 0), (RGB3, 1))),
    'grey_padded.bin': camera(w=50, h=20, pad=14, frames=3),
    'rgb24_padded_gray.bin': camera(pixfmt=2, w=30, h=17, pad=6, formats=((RGB3, 0),)),
}

if __name__ == '__main__':
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'v4l2')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
