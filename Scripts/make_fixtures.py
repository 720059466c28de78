#!/usr/bin/env python3
"""Writes the small safetensors fixtures that LopperIO's tests read.

Written by the reference Python `safetensors` library (numpy backend; BF16 and F8
through `ml_dtypes`), so Lopper is checked against files it did not write itself.
Run from the repository root:  pip install safetensors numpy ml_dtypes && python3 Scripts/make_fixtures.py
Also writes expected.json with every tensor's dtype, shape and values (as floats).
"""
import json
import os

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

out = "Tests/LopperIOTests/Fixtures"
os.makedirs(out, exist_ok=True)
values = np.array([0.0, 1.0, -2.5, 3.25, 100.0, -0.125], dtype=np.float64)
ints = np.array([0, 1, -2, 3, 100, -7], dtype=np.int64)

tensors = {
    "bool": np.array([True, False, True, True, False, False]),
    "u8": ints.clip(0).astype(np.uint8),
    "i8": ints.astype(np.int8),
    "i16": ints.astype(np.int16),
    "u16": ints.clip(0).astype(np.uint16),
    "f16": values.astype(np.float16).reshape(2, 3),
    "bf16": values.astype(ml_dtypes.bfloat16).reshape(3, 2),
    "i32": ints.astype(np.int32),
    "u32": ints.clip(0).astype(np.uint32),
    "f32": values.astype(np.float32).reshape(1, 2, 3),
    "f64": values,
    "i64": ints,
    "u64": ints.clip(0).astype(np.uint64),
    "f8_e4m3": values.astype(ml_dtypes.float8_e4m3fn),
    "f8_e5m2": values.astype(ml_dtypes.float8_e5m2),
    "scalar": np.array(1.5, dtype=np.float32),
    "empty": np.zeros((2, 0), dtype=np.float32),
}
save_file(tensors, f"{out}/all_dtypes.safetensors", metadata={"format": "pt", "source": "make_fixtures.py"})
expected = {
    name: {"shape": list(array.shape), "values": [float(v) for v in np.asarray(array, dtype=np.float64).reshape(-1)]}
    for name, array in tensors.items()
}

# A Hugging Face style sharded folder: two shards, an index and a config.
folder = f"{out}/sharded"
os.makedirs(folder, exist_ok=True)
rng = np.random.default_rng(0)
shard1 = {
    "model.embed_tokens.weight": rng.standard_normal((8, 4)).astype(ml_dtypes.bfloat16),
    "model.layers.0.mlp.up_proj.weight": rng.standard_normal((6, 4)).astype(ml_dtypes.bfloat16),
}
shard2 = {
    "model.layers.1.mlp.up_proj.weight": rng.standard_normal((6, 4)).astype(ml_dtypes.bfloat16),
    "model.norm.weight": np.ones(4, dtype=ml_dtypes.bfloat16),
}
names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
for name, shard in zip(names, [shard1, shard2]):
    save_file(shard, f"{folder}/{name}", metadata={"format": "pt"})
total = sum(a.nbytes for s in (shard1, shard2) for a in s.values())
index = {"metadata": {"total_size": total},
         "weight_map": {k: names[i] for i, s in enumerate((shard1, shard2)) for k in s}}
with open(f"{folder}/model.safetensors.index.json", "w") as f:
    json.dump(index, f, indent=2)
with open(f"{folder}/config.json", "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": 4, "num_hidden_layers": 2}, f, indent=2)
for s in (shard1, shard2):
    for k, a in s.items():
        expected["sharded/" + k] = {"shape": list(a.shape), "values": [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]}

with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print("fixtures written to", out)
