#!/usr/bin/env python3
"""A plain numpy DARE, the baseline Scripts/bench_pipeline times Lopper against.

  Scripts/reference_dare.py BASE_DIR FINETUNED_DIR OUT_DIR RATE [SEED]

Streams tensor by tensor, as a careful Python user would write it: each shard of the
fine-tuned folder is memory-mapped (numpy has no bfloat16, so BF16 is widened by a shift of
its bits and rounded back to nearest even by hand), and every 2-D linear weight and its bias
(not embeddings, norms or the head: Lopper's default selection) becomes
base + mask * (finetuned - base) / (1 - rate), mask ~ Bernoulli(1 - rate) from numpy's
default generator. The output keeps the fine-tuned shard layout; other files are copied.
Needs numpy only: it reads and writes the safetensors format itself (8-byte header length,
JSON header, data), since safetensors' numpy loader has no bfloat16. Scripts/bench_pipeline
checks its output with the safetensors package. Not bit-identical to Lopper (another RNG).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

NUMPY = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
         "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def header(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size)), 8 + size


def selected(name, shape, weights):
    if any(word in name for word in ("embed", "lm_head", "classifier", "norm")):
        return False
    if name.endswith(".weight"):
        return len(shape) == 2
    return name.endswith(".bias") and name[:-5] + ".weight" in weights


def to_f32(raw, dtype):
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return raw.view(NUMPY[dtype]).astype(np.float32)


def from_f32(values, dtype):
    if dtype == "BF16":
        bits = values.view(np.uint32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        nan = np.isnan(values)
        rounded[nan] = (bits[nan] >> 16) | 0x40  # keep NaN a (quiet) NaN
        return rounded.astype(np.uint16)
    return values.astype(NUMPY[dtype])


def prune_shard(base_files, ft_path, out_path, rate, rng):
    meta, data_start = header(ft_path)
    names = [n for n in meta if n != "__metadata__"]
    weights = {n for n in names if n.endswith(".weight") and len(meta[n]["shape"]) == 2}
    ft = np.memmap(ft_path, dtype=np.uint8, mode="r")
    with open(out_path, "wb") as out:
        text = json.dumps(meta, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        out.write(struct.pack("<Q", len(text)) + text)
        for name in sorted(names, key=lambda n: meta[n]["data_offsets"][0]):
            info = meta[name]
            begin, end = info["data_offsets"]
            raw = ft[data_start + begin:data_start + end]
            if not selected(name, info["shape"], weights) or name not in base_files:
                out.write(raw.tobytes())
                continue
            base_path, base_meta, base_start = base_files[name]
            b0, b1 = base_meta[name]["data_offsets"]
            base = np.memmap(base_path, dtype=np.uint8, mode="r")[base_start + b0:base_start + b1]
            w0, w1 = to_f32(base, info["dtype"]), to_f32(raw, info["dtype"])
            keep = 1.0 - rate
            mask = rng.random(w1.shape, dtype=np.float32) < keep
            merged = w0 + np.where(mask, (w1 - w0) / np.float32(keep), np.float32(0))
            out.write(from_f32(merged, info["dtype"]).tobytes())


def main():
    base_dir, ft_dir, out_dir, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    base_files = {}
    for file in sorted(os.listdir(base_dir)):
        if file.endswith(".safetensors"):
            path = os.path.join(base_dir, file)
            meta, start = header(path)
            base_files.update({name: (path, meta, start) for name in meta if name != "__metadata__"})
    os.makedirs(out_dir)
    for file in sorted(os.listdir(ft_dir)):
        path = os.path.join(ft_dir, file)
        if file.endswith(".safetensors"):
            prune_shard(base_files, path, os.path.join(out_dir, file), rate, rng)
        elif os.path.isfile(path):
            shutil.copyfile(path, os.path.join(out_dir, file))


if __name__ == "__main__":
    main()
