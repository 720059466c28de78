#!/usr/bin/env python3
"""Ten optimizer steps by python/lopper_adamr.py (PyTorch), for the Swift optimizer's test.

Writes Tests/LopperModelsTests/Fixtures/optimizer/adamr.safetensors: for three parameters i
(shapes [4, 5], [8], [3]: SIMD bodies and tails) the start "w.i", the origin "w0.i" (different
from the start, so the pull acts from step 1), the gradients "grad.S.i" of steps S = 0..9, and
the weights after the ten steps "out.MODE.i" for MODE in l2, l1, adamw. lr and weight_decay are
in the metadata. Run with the fixture venv: python Scripts/make_optimizer_fixtures.py
"""
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "python"))

SHAPES = ([4, 5], [8], [3])
LR, DECAY, STEPS = 0.01, 0.3, 10


def main():
    import torch
    from safetensors.torch import save_file
    from lopper_adamr import AdamR

    g = torch.Generator().manual_seed(31)
    start = [torch.rand(s, generator=g) * 2 - 1 for s in SHAPES]
    origin = [torch.rand(s, generator=g) * 2 - 1 for s in SHAPES]
    grads = [[(torch.rand(s, generator=g) * 2 - 1) * 0.1 * (i + 1) for i, s in enumerate(SHAPES)] for _ in range(STEPS)]
    tensors = {}
    for i in range(len(SHAPES)):
        tensors[f"w.{i}"], tensors[f"w0.{i}"] = start[i], origin[i]
        for step in range(STEPS):
            tensors[f"grad.{step}.{i}"] = grads[step][i]
    for mode in ("l2", "l1", "adamw"):
        params = [torch.nn.Parameter(w.clone()) for w in start]
        optimizer = AdamR(params, lr=LR, weight_decay=DECAY, mode=mode)
        with torch.no_grad():
            for p, o in zip(params, origin):
                optimizer.state[p]["origin"] = o.clone()
        for step in range(STEPS):
            for p, grad in zip(params, grads[step]):
                p.grad = grad.clone()
            optimizer.step()
        for i, p in enumerate(params):
            tensors[f"out.{mode}.{i}"] = p.detach().clone()
    folder = os.path.join(ROOT, "Tests", "LopperModelsTests", "Fixtures", "optimizer")
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, "adamr.safetensors"),
              metadata={"lr": str(LR), "weight_decay": str(DECAY), "steps": str(STEPS)})


if __name__ == "__main__":
    sys.exit(main())
