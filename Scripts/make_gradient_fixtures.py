#!/usr/bin/env python3
"""Reference gradients for the training tests, written by PyTorch.

For each committed sequence-classification fixture (made by make_model_fixtures.py), runs one
padded batch with an attention mask through transformers in eval mode (no dropout), takes the
mean cross-entropy against fixed labels and writes, next to the model folder:
  gradients.json          {"inputs": [[ids]...], "labels": [...]}
  gradients.safetensors   "loss" [1] and "grad.<parameter name>" for every parameter
Run with the fixture venv: python Scripts/make_gradient_fixtures.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import _torch_compat  # noqa: E402

LENGTHS = (6, 2, 11)


def make(folder, seed):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(os.path.join(folder, "model"), attn_implementation="eager")
    model.eval()  # dropout off: the Swift side checks dropout by finite differences
    config = model.config
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(3, config.vocab_size, (n,), generator=g).tolist() for n in LENGTHS]
    labels = torch.randint(0, config.num_labels, (len(inputs),), generator=g)
    longest = max(LENGTHS)
    pad = config.pad_token_id
    ids = torch.tensor([s + [pad] * (longest - len(s)) for s in inputs])
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in inputs])
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    tensors = {"loss": out.loss.detach().reshape(1).float()}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().contiguous()
    save_file(tensors, os.path.join(folder, "gradients.safetensors"))
    with open(os.path.join(folder, "gradients.json"), "w") as f:
        json.dump({"inputs": inputs, "labels": labels.tolist()}, f)


def main():
    _torch_compat()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LopperModelsTests", "Fixtures", "models")
    make(os.path.join(root, "bert_classifier"), 21)
    make(os.path.join(root, "roberta_classifier"), 22)


if __name__ == "__main__":
    sys.exit(main())
