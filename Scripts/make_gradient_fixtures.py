#!/usr/bin/env python3
"""Reference gradients for the training tests, written by PyTorch.

For committed model fixtures (made by make_model_fixtures.py), runs one padded batch with an
attention mask through transformers in eval mode (no dropout): sequence classifiers take the
mean cross-entropy against fixed labels, decoders the mean next-token loss (labels = the ids,
-100 at padding, shifted by transformers). Writes, next to the model folder:
  gradients.json          {"inputs": [[ids]...], "labels": [...]} (labels: classifiers only)
  gradients.safetensors   "loss" [1] and "grad.<parameter name>" for every parameter
Run with the fixture venv: python Scripts/make_gradient_fixtures.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import _torch_compat  # noqa: E402

LENGTHS = (6, 2, 11)


def make(folder, seed, decoder=False):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    cls = AutoModelForCausalLM if decoder else AutoModelForSequenceClassification
    model = cls.from_pretrained(os.path.join(folder, "model"), attn_implementation="eager")
    model.eval()  # dropout off: the Swift side checks dropout by finite differences
    config = model.config
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(3, config.vocab_size, (n,), generator=g).tolist() for n in LENGTHS]
    longest = max(LENGTHS)
    pad = config.pad_token_id or 0
    ids = torch.tensor([s + [pad] * (longest - len(s)) for s in inputs])
    mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in inputs])
    if decoder:
        labels = ids.masked_fill(mask == 0, -100)
    else:
        labels = torch.randint(0, config.num_labels, (len(inputs),), generator=g)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    tensors = {"loss": out.loss.detach().reshape(1).float()}
    for name, p in model.named_parameters():
        tensors["grad." + name] = p.grad.detach().float().contiguous()
    save_file(tensors, os.path.join(folder, "gradients.safetensors"))
    with open(os.path.join(folder, "gradients.json"), "w") as f:
        json.dump({"inputs": inputs} if decoder else {"inputs": inputs, "labels": labels.tolist()}, f)


def main():
    _torch_compat()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LopperModelsTests", "Fixtures", "models")
    make(os.path.join(root, "bert_classifier"), 21)
    make(os.path.join(root, "roberta_classifier"), 22)
    make(os.path.join(root, "llama"), 23, decoder=True)
    make(os.path.join(root, "qwen2"), 24, decoder=True)  # tied embeddings, q/k/v biases
    make(os.path.join(root, "mistral_window"), 25, decoder=True)  # sliding window of 4


if __name__ == "__main__":
    sys.exit(main())
