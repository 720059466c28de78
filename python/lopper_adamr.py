"""AdamR (DAREx-L2) for PyTorch: a drop-in torch.optim.Optimizer, the same update as Lopper's.

AdamR-L2 decays the weights toward the pre-trained ones W0, so that the fine-tuning delta stays
small and DARE can drop 99% or more of it afterwards. Per step, with Adam's moments m and v:

    vbar = sqrt(mean over all parameters of v / (1 - beta2^t))      (one scalar; 1 if 0)
    l2:    W -= lr * weight_decay / vbar * (W - W0)
    l1:    W -= lr * weight_decay / vbar * sign(W - W0)
    adamw: W *= 1 - lr * weight_decay                                  (torch's AdamW)
    then   W -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

W0 is each parameter's value when the optimizer is built (or `set_origin`). With sharded
parameters (FSDP, DeepSpeed ZeRO) every rank holds part of every tensor; vbar must be the mean
over the whole model, so pass `process_group` (or leave it None to use the default group when
torch.distributed is initialised): the sum of v and the element count are all-reduced. With
replicated parameters (DDP) the all-reduce multiplies both by the world size, and vbar is the same.

Usage with the Hugging Face Trainer:

    from lopper_adamr import AdamR
    optimizer = AdamR(model.parameters(), lr=1e-4, weight_decay=0.1, mode="l2")
    trainer = Trainer(model=model, args=args, train_dataset=data, optimizers=(optimizer, None))
"""
import math

import torch
import torch.distributed as dist

__all__ = ["AdamR"]


class AdamR(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, mode="l2",
                 process_group=None):
        if mode not in ("l2", "l1", "adamw"):
            raise ValueError(f"mode must be l2, l1 or adamw, not {mode!r}")
        if not lr > 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError("lr > 0, 0 <= betas < 1, eps >= 0 and weight_decay >= 0 are required")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.mode = mode
        self.process_group = process_group
        self.set_origin()

    @torch.no_grad()
    def set_origin(self):
        """Takes the parameters' current values as W0."""
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["origin"] = p.detach().clone(memory_format=torch.preserve_format)

    def _global_mean(self, total, count, device):
        """sum / count over every rank holding part of the model."""
        if dist.is_available() and dist.is_initialized():
            both = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
            dist.all_reduce(both, group=self.process_group)
            total, count = both[0].item(), both[1].item()
        return total / count if count > 0 else 0.0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        total, count, device, step = 0.0, 0, None, None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamR does not support sparse gradients")
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"]
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                total += state["exp_avg_sq"].sum(dtype=torch.float64).item()
                count += p.numel()
                device = p.device
        if step is None:
            return loss
        mean_v = self._global_mean(total, count, device) if self.mode != "adamw" else 0.0
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
            mean = mean_v / correction2  # one vbar for the model (groups share betas, as in DAREx)
            vbar = math.sqrt(mean) if mean > 0 else 1.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if decay != 0:
                    if self.mode == "adamw":
                        p.mul_(1 - lr * decay)
                    elif self.mode == "l2":
                        p.add_(p - state["origin"], alpha=-lr * decay / vbar)
                    else:
                        p.add_(torch.sign(p - state["origin"]), alpha=-lr * decay / vbar)
                denom = (state["exp_avg_sq"].sqrt() / math.sqrt(correction2)).add_(eps)
                p.addcdiv_(state["exp_avg"], denom, value=-lr / correction1)
        return loss
