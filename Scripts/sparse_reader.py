#!/usr/bin/env python3
"""Reference reader of Lopper's sparse deltas (Docs/sparse-format.md, version 1), numpy only.

    sparse_reader.py SPARSE_DIR BASE_DIR --out FILE.safetensors [--delta]

writes the merged model's tensors (what `lopper apply` rebuilds, in the recorded dtypes, bit
for bit), or with --delta the dense deltas (merged - base, F32). Checks the base identity, the
position and value checksums, as `lopper apply` does. As a module: `merged_tensors(sparse, base)`
and `dense_delta(merged, base_tensor)`.
"""
import argparse, glob, json, os, struct, sys
import numpy as np

FORMAT, RULE = "1", "philox4x32-10/bernoulli16/1"
MASK64 = (1 << 64) - 1
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64, "U8": np.uint8, "BOOL": np.uint8,
         "I8": np.int8, "I16": np.int16, "U16": np.uint16, "I32": np.int32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64}
BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def read_safetensors(path):
    """(metadata, {name: (dtype, shape, raw uint8 array)}) of one file, mapped."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    (size,) = struct.unpack("<Q", bytes(data[:8]))
    header = json.loads(bytes(data[8:8 + size]))
    metadata = header.pop("__metadata__", {})
    start = 8 + size
    return metadata, {name: (info["dtype"], info["shape"], data[start + info["data_offsets"][0]:start + info["data_offsets"][1]])
                      for name, info in header.items()}


def read_checkpoint(folder):
    metadata, tensors = {}, {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        meta, found = read_safetensors(path)
        metadata = metadata or meta
        tensors.update(found)
    return metadata, tensors


def mix64(x):
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def wrapping_sum(values):
    return int(values.sum(dtype=np.uint64)) & MASK64 if values.size else 0


def values_checksum(raw, dtype):
    raw = np.asarray(raw).reshape(-1).view(np.uint8)
    words = np.concatenate([raw, np.zeros(-raw.size % 8, np.uint8)]).view("<u8").astype(np.uint64)
    with np.errstate(over="ignore"):
        return wrapping_sum(mix64(words + np.arange(words.size, dtype=np.uint64) * GOLDEN))


def sample_hash(raw):
    words = raw.size // 8
    samples = min(words, 4096)
    index = np.arange(samples, dtype=np.uint64)
    if samples != words:
        index = (index * np.uint64(words)) // np.uint64(samples)
    picked = raw[:words * 8].view("<u8")[index.astype(np.int64)] if samples else np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        return (int(mix64(np.array([raw.size], np.uint64))[0]) + wrapping_sum(mix64(picked + index * GOLDEN))) & MASK64


def philox_blocks(blocks, seed, stream_hash):
    """Philox-4x32-10 words (4, len(blocks)) of counters (block low, block high, hash low, hash high)."""
    m0, m1, w0, w1, low = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57), 0x9E3779B9, 0xBB67AE85, np.uint64(0xFFFFFFFF)
    blocks = blocks.astype(np.uint64)
    c0, c1 = blocks & low, blocks >> np.uint64(32)
    c2 = np.full_like(c0, stream_hash & 0xFFFFFFFF)
    c3 = np.full_like(c0, stream_hash >> 32)
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for round in range(10):
        if round:
            k0, k1 = (k0 + w0) & 0xFFFFFFFF, (k1 + w1) & 0xFFFFFFFF
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & low, (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & low
    return np.stack([c0, c1, c2, c3])


def bernoulli(length, threshold, seed, stream_hash):
    """The keep mask of `length` 16-bit draws, exactly as Lopper's KeepRule."""
    high, low = threshold >> 16, threshold & 0xFFFF
    if high == 65536:
        return np.ones(length, bool)
    groups = (length + 63) // 64
    words = philox_blocks(np.arange(8 * groups, dtype=np.uint64), seed, stream_hash).reshape(4, groups, 8)
    r = np.arange(64)
    draws = (words[r // 16, :, r % 8] >> np.uint64(16) * ((r % 16) // 8).astype(np.uint64)[:, None]) & np.uint64(0xFFFF)
    draws = draws.T.reshape(-1)[:length]
    keep = draws < np.uint64(high)
    ties = np.nonzero(draws == np.uint64(high))[0]
    if low and ties.size:
        index = ties.astype(np.uint64)
        counters = np.stack([index & np.uint64(0xFFFFFFFF), (index >> np.uint64(32)) | np.uint64(0x80000000)])
        refine = philox_refinement(counters, seed, stream_hash)
        keep[ties] = refine < np.uint64(low)
    return keep


def philox_refinement(counters, seed, stream_hash):
    # The refinement draw uses the block with counter (i low, i high | 2^31, hash): the same
    # rounds as philox_blocks with that 64-bit block number, word 0, high 16 bits.
    blocks = counters[0] | (counters[1] << np.uint64(32))
    return philox_blocks(blocks, seed, stream_hash)[0] >> np.uint64(16)


def positions(record, tensors, name):
    count = int(np.prod(record["shape"], dtype=np.int64))
    encoding = record["encoding"]
    if encoding == "philox":
        mask = record["mask"]
        if mask["rule"] != RULE:
            raise ValueError(f"{name}: mask rule {mask['rule']} is not {RULE}")
        drawn = bernoulli(mask["length"], mask["threshold"], int(mask["seed"], 16), int(mask["stream_hash"], 16))
        shape = record["shape"]
        if mask["map"] == "element":
            return np.nonzero(drawn)[0]
        rows, cols = shape
        full = np.repeat(drawn, cols) if mask["map"] == "rows" else np.tile(drawn, rows)
        return np.nonzero(full)[0]
    if encoding == "bitmap":
        bits = np.unpackbits(np.asarray(tensors[name + "::bitmap"][2]), bitorder="little")[:count]
        return np.nonzero(bits)[0]
    if encoding == "indices":
        if record["count"] == 0:
            return np.zeros(0, np.int64)
        code = np.asarray(tensors[name + "::indices"][2])
        ends = np.nonzero(code < 0x80)[0]
        starts = np.concatenate([[0], ends[:-1] + 1])
        shifts = (np.arange(code.size) - np.repeat(starts, ends - starts + 1)) * 7
        gaps = np.add.reduceat((code & 0x7F).astype(np.uint64) << shifts.astype(np.uint64), starts)
        return (np.cumsum(gaps + np.uint64(1)) - np.uint64(1)).astype(np.int64)
    raise ValueError(f"{name}: unknown encoding {encoding}")


def as_f32(raw, dtype):
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return raw.view(NUMPY[dtype]).astype(np.float32)


def from_f32(values, dtype):
    """Rounded to nearest even in `dtype`, as raw bits of that dtype."""
    if dtype == "BF16":
        bits = values.astype(np.float32).view(np.uint32)
        rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        return np.where(np.isnan(values), ((bits >> 16) | 0x40).astype(np.uint16), rounded)
    return values.astype(NUMPY[dtype])


def merged_tensors(sparse_folder, base_folder):
    """{name: (dtype, shape, numpy array of the dtype's bits)} of the merged model."""
    metadata, tensors = read_checkpoint(sparse_folder)
    if metadata.get("lopper.sparse.format") != FORMAT:
        raise ValueError(f"{sparse_folder}: not a version {FORMAT} sparse delta")
    _, base = read_checkpoint(base_folder)
    result = {}
    for record in json.loads(metadata["lopper.sparse.tensors"]):
        name, dtype, shape = record["name"], record["dtype"], record["shape"]
        values = np.asarray(tensors[record["name"] if record["encoding"] == "dense" else name + "::values"][2]) if record["count"] else np.zeros(0, np.uint8)
        if values_checksum(values, dtype) != int(record["values_checksum"], 16):
            raise ValueError(f"{name}: the values do not match their checksum")
        if record["encoding"] == "dense":
            result[name] = (dtype, shape, values.view(NUMPY[dtype]).reshape(shape))
            continue
        identity = record["base"]
        base_dtype, base_shape, raw = base[name]
        if base_dtype != identity["dtype"] or base_shape != identity["shape"] or sample_hash(np.asarray(raw)) != int(identity["sample_hash"], 16):
            raise ValueError(f"{name}: {base_folder} is not the base this delta was made against")
        where = positions(record, tensors, name)
        with np.errstate(over="ignore"):
            checksum = wrapping_sum(mix64(where.astype(np.uint64)))
        if where.size != record["count"] or checksum != int(record["positions_checksum"], 16):
            raise ValueError(f"{name}: the positions do not match their checksum")
        out = from_f32(as_f32(np.asarray(raw), base_dtype) + np.float32(0), dtype).reshape(-1)
        out[where] = values.view(out.dtype)
        result[name] = (dtype, shape, out.reshape(shape))
    return result


def dense_delta(merged, base_raw, base_dtype):
    """merged - base in F32 (exact for same-dtype pairs of BF16/F16)."""
    dtype, shape, bits = merged
    return as_f32(bits.reshape(-1).view(np.uint8), dtype).reshape(shape) - as_f32(base_raw, base_dtype).reshape(shape)


def write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name, (dtype, shape, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sparse"); parser.add_argument("base"); parser.add_argument("--out", required=True)
    parser.add_argument("--delta", action="store_true", help="write merged - base (F32) instead of the merged tensors")
    args = parser.parse_args()
    try:
        merged = merged_tensors(args.sparse, args.base)
        if args.delta:
            _, base = read_checkpoint(args.base)
            merged = {name: ("F32", m[1], dense_delta(m, np.asarray(base[name][2]), base[name][0]))
                      for name, m in merged.items() if name in base and base[name][1] == m[1]}
        write_safetensors(args.out, merged)
    except (ValueError, KeyError, OSError) as error:
        sys.exit(f"sparse_reader: {error}")


if __name__ == "__main__":
    main()
