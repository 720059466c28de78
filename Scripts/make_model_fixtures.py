#!/usr/bin/env python3
"""Writes the fixtures that LopperModels' tests read (tests never need Python).

Run from the repository root:  python3 Scripts/make_model_fixtures.py
Needs torch, transformers (5.x) and safetensors; no network: every model is built
from a config with random weights (fixed seeds) and saved with save_pretrained.

make_model_fixtures(out_dir): tiny Llama / Qwen2 / BERT / RoBERTa models in
out_dir/NAME/model/ (config.json, model.safetensors), and beside that folder
  inputs.json           {"inputs": [[ids...], ...]}   sequences of lengths 1, 5 and 17
  expected.safetensors  hidden.I [len, hidden]  last hidden state (decoders: after the final norm)
                        logits.I [len, vocab]   decoders
                        logits.I [num_labels]   sequence classifiers
                        pooled.I [hidden]       encoders with a pooler
Each sequence is run on its own (batch of one), in F32, eager attention.
"""
import json
import os
import shutil
import sys


def _torch_compat():
    """transformers 5.x asks for torch >= 2.6; this machine has torch 2.5. The
    modelling code we use (eager attention, CPU, no training) runs on 2.5, so
    pretend to be 2.6 and stub the few names imported at module load time."""
    import importlib.metadata as metadata
    import types

    real_version = metadata.version
    import torch

    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 6):
        return
    metadata.version = lambda name: "2.6.0" if name == "torch" else real_version(name)
    import torch.distributed.fsdp as fsdp

    for name in ("CPUOffloadPolicy", "MixedPrecisionPolicy", "FSDPModule", "fully_shard"):
        if not hasattr(fsdp, name):
            setattr(fsdp, name, type(name, (), {}))
    import torch._dynamo._trace_wrapped_higher_order_op as wrapped

    if not hasattr(wrapped, "TransformGetItemToIndex"):
        from torch.overrides import TorchFunctionMode

        class TransformGetItemToIndex(TorchFunctionMode):
            def __torch_function__(self, func, types_, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))

        wrapped.TransformGetItemToIndex = TransformGetItemToIndex
    if not hasattr(torch, "accelerator"):
        accelerator = types.ModuleType("torch.accelerator")
        accelerator.is_available = lambda: False
        accelerator.current_accelerator = lambda *a, **k: None
        accelerator.device_count = lambda: 0
        torch.accelerator = accelerator


LENGTHS = (1, 5, 17)


def _inputs(vocab, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, vocab, (n,), generator=g).tolist() for n in LENGTHS]


def _run(model, inputs, kind):
    """Expected outputs, one sequence at a time."""
    import torch

    out = {}
    with torch.no_grad():
        for i, ids in enumerate(inputs):
            x = torch.tensor([ids])
            if kind == "decoder":
                r = model(input_ids=x, output_hidden_states=True)
                out[f"hidden.{i}"] = r.hidden_states[-1][0]
                out[f"logits.{i}"] = r.logits[0]
            elif kind == "classifier":
                r = model(input_ids=x, output_hidden_states=True)
                out[f"hidden.{i}"] = r.hidden_states[-1][0]
                out[f"logits.{i}"] = r.logits[0]
            else:
                r = model(input_ids=x)
                out[f"hidden.{i}"] = r.last_hidden_state[0]
                if getattr(r, "pooler_output", None) is not None:
                    out[f"pooled.{i}"] = r.pooler_output[0]
    return {k: v.detach().float().contiguous() for k, v in out.items()}


def _save(model, folder, inputs, expected, config_edit=None):
    from safetensors.torch import save_file

    shutil.rmtree(folder, ignore_errors=True)
    model_folder = os.path.join(folder, "model")  # a plain HF folder: a checkpoint takes every .safetensors in it
    model.save_pretrained(model_folder, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(model_folder, extra)
        if os.path.exists(path):
            os.remove(path)
    if config_edit:
        path = os.path.join(model_folder, "config.json")
        with open(path) as f:
            config = json.load(f)
        config_edit(config)
        with open(path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(folder, "inputs.json"), "w") as f:
        json.dump({"inputs": inputs}, f)
    save_file(expected, os.path.join(folder, "expected.safetensors"))


def make_model_fixtures(out_dir):
    _torch_compat()
    import torch
    from transformers import (BertConfig, BertForSequenceClassification, BertModel, LlamaConfig,
                              LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, RobertaConfig,
                              RobertaForSequenceClassification)

    os.makedirs(out_dir, exist_ok=True)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                 initializer_range=0.2)  # large enough that attention is far from uniform

    def decoder(name, cls, config, seed, dtype=None, config_edit=None):
        torch.manual_seed(seed)
        config._attn_implementation = "eager"
        model = cls(config).eval()
        with torch.no_grad():  # random norm weights, so the tests see them used
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
        if dtype is not None:
            model = model.to(dtype)
        reference = model.float() if dtype is None else cls(config).eval()
        if dtype is not None:
            reference.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
        inputs = _inputs(config.vocab_size, seed)
        expected = _run(reference, inputs, "decoder")
        _save(model, os.path.join(out_dir, name), inputs, expected, config_edit)

    llama = dict(small, num_key_value_heads=2, vocab_size=128, rms_norm_eps=1e-5, tie_word_embeddings=False)
    decoder("llama", LlamaForCausalLM, LlamaConfig(**llama), 1)
    decoder("llama_bf16", LlamaForCausalLM, LlamaConfig(**llama), 1, dtype=torch.bfloat16)
    decoder("llama_rope_linear", LlamaForCausalLM,
            LlamaConfig(**llama, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}), 2)

    def v4_rope(config):  # the transformers 4.x spelling: rope_theta + rope_scaling
        params = config.pop("rope_parameters")
        config["rope_theta"] = params.pop("rope_theta")
        config["rope_scaling"] = params

    decoder("llama3_rope", LlamaForCausalLM,
            LlamaConfig(**dict(llama, tie_word_embeddings=True),
                        rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
                                         "rope_theta": 500000.0}), 3, config_edit=v4_rope)
    decoder("mistral_window", MistralForCausalLM,
            MistralConfig(**dict(llama, sliding_window=4), rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
            8)
    decoder("qwen2", Qwen2ForCausalLM,
            Qwen2Config(**dict(small, hidden_size=48, num_attention_heads=4, num_key_value_heads=2, vocab_size=160,
                               rms_norm_eps=1e-6, tie_word_embeddings=True),
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}), 4)

    def encoder(name, cls, config, seed, kind):
        torch.manual_seed(seed)
        config._attn_implementation = "eager"
        model = cls(config).eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.1)
        inputs = _inputs(config.vocab_size, seed)
        _save(model, os.path.join(out_dir, name), inputs, _run(model, inputs, kind))

    bert = dict(small, vocab_size=128, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12)
    encoder("bert", BertModel, BertConfig(**bert), 5, "encoder")
    encoder("bert_classifier", BertForSequenceClassification, BertConfig(**bert, num_labels=3), 6, "classifier")
    encoder("roberta_classifier", RobertaForSequenceClassification,
            RobertaConfig(**dict(bert, type_vocab_size=1, layer_norm_eps=1e-5), pad_token_id=1, num_labels=2), 7,
            "classifier")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LopperModelsTests", "Fixtures")
    make_model_fixtures(os.path.join(root, "models"))


if __name__ == "__main__":
    sys.exit(main())
