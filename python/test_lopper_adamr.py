#!/usr/bin/env python3
"""Checks of python/lopper_adamr.py (plain python, no pytest; CPU torch):

1. mode="adamw" takes the same steps as torch.optim.AdamW;
2. sharded over two processes (gloo), each holding half of every tensor as FSDP / ZeRO do,
   it takes the same steps as one process holding everything (vbar is all-reduced), and a
   shard alone (no all-reduce) would not.
The Swift optimizer is checked against this one by Tests/LopperModelsTests (OptimizerTests,
on gradients written by Scripts/make_optimizer_fixtures.py).
Run: python python/test_lopper_adamr.py
"""
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lopper_adamr import AdamR  # noqa: E402

SHAPES = ([6, 5], [9], [4])
STEPS = 10


def problem():
    g = torch.Generator().manual_seed(7)
    start = [torch.rand(s, generator=g) * 2 - 1 for s in SHAPES]
    grads = [[(torch.rand(s, generator=g) * 2 - 1) * 0.1 * (i + 1) for i, s in enumerate(SHAPES)] for _ in range(STEPS)]
    return start, grads


def train(optimizer_class, start, grads, **options):
    params = [torch.nn.Parameter(w.clone()) for w in start]
    optimizer = optimizer_class(params, **options)
    for step_grads in grads:
        for p, grad in zip(params, step_grads):
            p.grad = grad.clone()
        optimizer.step()
        with torch.no_grad():  # move W away from W0 so the pull has something to do next step
            for p in params:
                p.add_(0.01)
    return [p.detach() for p in params]


def halves(t, rank):
    flat = t.reshape(-1)
    middle = (flat.numel() + 1) // 2
    return flat[:middle].clone() if rank == 0 else flat[middle:].clone()


def worker(rank, init_file, results):
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    start, grads = problem()
    out = train(AdamR, [halves(w, rank) for w in start], [[halves(g, rank) for g in step] for step in grads],
                lr=0.01, weight_decay=0.3, mode="l2")
    results[rank] = [t.clone() for t in out]
    dist.destroy_process_group()


def main():
    start, grads = problem()
    ours = train(AdamR, start, grads, lr=0.01, weight_decay=0.05, mode="adamw")
    theirs = train(torch.optim.AdamW, start, grads, lr=0.01, weight_decay=0.05)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7), (a - b).abs().max()
    print("adamw mode = torch.optim.AdamW over", STEPS, "steps")

    whole = train(AdamR, start, grads, lr=0.01, weight_decay=0.3, mode="l2")
    with tempfile.TemporaryDirectory() as folder:
        manager = mp.Manager()
        results = manager.dict()
        mp.spawn(worker, args=(os.path.join(folder, "init"), results), nprocs=2, join=True)
        sharded = [torch.cat([results[0][i], results[1][i]]).reshape(SHAPES[i]) for i in range(len(SHAPES))]
    worst = max((a - b).abs().max().item() for a, b in zip(whole, sharded))
    assert worst <= 1e-6, worst
    alone = train(AdamR, [halves(w, 0) for w in start], [[halves(g, 0) for g in step] for step in grads],
                  lr=0.01, weight_decay=0.3, mode="l2")
    local_difference = max((a - halves(b, 0)).abs().max().item() for a, b in zip(alone, whole))
    assert local_difference > 1e-5, local_difference
    print(f"two gloo shards = one process (max difference {worst:.2e}); a shard alone differs by {local_difference:.2e}")


if __name__ == "__main__":
    main()
