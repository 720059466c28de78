#!/usr/bin/env python3
"""Writes the LoRA fixtures under Tests/LopperModelsTests/Fixtures/lora/, with PEFT itself.

    pip install torch --index-url https://download.pytorch.org/whl/cpu   (or plain PyPI)
    pip install peft transformers safetensors numpy
    python3 Scripts/make_lora_fixtures.py adapters          # step 1: adapters + PEFT's merges
    swift build --product lopper
    python3 Scripts/make_lora_fixtures.py pruned .build/debug/lopper   # step 2

Tests never need Python: they read the files written here. Bases are the existing model
fixtures (Tests/LopperModelsTests/Fixtures/models/llama, llama_bf16) plus a tiny GPT-2
written here (PEFT's fan_in_fan_out needs a Conv1D model).

Step 1, per case NAME in lora/:
  NAME/adapter/          PEFT's save_pretrained (adapter_config.json, adapter_model.safetensors)
  NAME/merged.safetensors  the tensors PEFT's merge_and_unload() changes (every other tensor
                         of the merged model equals the base's), in the base's dtype
  llama:      F32 base; use_rslora, a rank_pattern and an alpha_pattern, an embedding target,
              modules_to_save lm_head; factors random (init_lora_weights=False) and scaled small
  llama_bf16: the same adapter over the BF16 base (PEFT keeps the factors in F32)
  gpt2:       fan_in_fan_out (Conv1D c_attn, c_fc) with lora_bias
Step 2: runs `lopper prune --output adapter` (DARE on the factors, rate 0.5, seed 7) on
  lora/llama/adapter, writes lora/llama/pruned/ (that adapter), loads it into PEFT over the
  base, and writes lora/llama/pruned_logits.safetensors: logits.I for the sequences of
  models/llama/inputs.json, each run alone, F32.
"""
import json
import os
import shutil
import subprocess
import sys

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "LopperModelsTests", "Fixtures")
OUT = os.path.join(FIXTURES, "lora")


def changed_tensors(merged, base_state):
    """The tensors merge_and_unload changed (by value), as contiguous copies."""
    return {k: v.contiguous().clone() for k, v in merged.items() if k not in base_state or not torch.equal(v, base_state[k])}


def randomize_factors(model, scale, seed):
    """Random, small factors (PEFT's init leaves B or A at zero, which would test nothing)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def llama_case(name, model_name, dtype):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM
    base_dir = os.path.join(FIXTURES, "models", model_name, "model")
    model = LlamaForCausalLM.from_pretrained(base_dir, dtype=dtype).eval()
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    config = LoraConfig(
        r=4, lora_alpha=8, use_rslora=True,
        target_modules=["q_proj", "v_proj", "down_proj", "embed_tokens"],
        rank_pattern={"down_proj": 2}, alpha_pattern={"model.layers.1.self_attn.q_proj": 3},
        modules_to_save=["lm_head"], init_lora_weights=False, lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    randomize_factors(peft_model, 0.1, seed=11)
    with torch.no_grad():  # the trained copy of lm_head
        head = peft_model.base_model.model.lm_head.modules_to_save["default"]
        head.weight.add_(torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(12)).to(dtype) * 0.01)
    write_case(name, peft_model, base_state)


def gpt2_case():
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(3)
    base_dir = os.path.join(OUT, "gpt2", "base")
    config = GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2, n_inner=32)
    model = GPT2LMHeadModel(config).eval()
    shutil.rmtree(base_dir, ignore_errors=True)
    model.save_pretrained(base_dir)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
                      lora_bias=True, init_lora_weights=False, lora_dropout=0.0)
    peft_model = get_peft_model(model, lora)
    randomize_factors(peft_model, 0.2, seed=13)
    write_case("gpt2", peft_model, base_state)


def write_case(name, peft_model, base_state):
    case_dir = os.path.join(OUT, name)
    adapter_dir = os.path.join(case_dir, "adapter")
    shutil.rmtree(adapter_dir, ignore_errors=True)
    peft_model.save_pretrained(adapter_dir)
    config_path = os.path.join(adapter_dir, "adapter_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["target_modules"] = sorted(config["target_modules"])  # a set in PEFT: stable bytes across runs
    config["base_model_name_or_path"] = "../../models/" + name + "/model" if name != "gpt2" else "../base"
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    for extra in ("README.md",):  # the model card PEFT writes is not needed
        path = os.path.join(adapter_dir, extra)
        if os.path.exists(path):
            os.remove(path)
    merged = peft_model.merge_and_unload().state_dict()
    save_file(changed_tensors(merged, base_state), os.path.join(case_dir, "merged.safetensors"))
    print(name, "adapter keys:", sorted(load_file(os.path.join(adapter_dir, "adapter_model.safetensors")).keys()))


def adapters():
    os.makedirs(OUT, exist_ok=True)
    llama_case("llama", "llama", torch.float32)
    llama_case("llama_bf16", "llama_bf16", torch.bfloat16)
    gpt2_case()


def pruned(lopper):
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    base_dir = os.path.join(FIXTURES, "models", "llama", "model")
    out = os.path.join(OUT, "llama", "pruned")
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([lopper, "prune", "--base", base_dir, "--finetuned", os.path.join(OUT, "llama", "adapter"),
                    "--method", "dare", "--set", "rate=0.5", "--seed", "7", "--output", "adapter",
                    "--out", out, "--quiet"], check=True)
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32), out).eval()
    # Every tensor Lopper wrote is what PEFT loaded (no key ignored, none left at its init).
    loaded = model.state_dict()
    for key, value in load_file(os.path.join(out, "adapter_model.safetensors")).items():
        for part in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"):
            key = key.replace(f".{part}.weight", f".{part}.default.weight") if ".weight" in key else key.replace(part, part + ".default")
        key = key.replace("lm_head.weight", "lm_head.modules_to_save.default.weight")
        assert torch.equal(loaded[key], value), key
    with open(os.path.join(FIXTURES, "models", "llama", "inputs.json")) as f:
        inputs = json.load(f)["inputs"]
    logits = {}
    with torch.no_grad():
        for i, ids in enumerate(inputs):
            logits[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
    save_file(logits, os.path.join(OUT, "llama", "pruned_logits.safetensors"))
    print("pruned adapter loaded by PEFT; logits written for", len(inputs), "sequences")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "adapters":
        adapters()
    elif len(sys.argv) == 3 and sys.argv[1] == "pruned":
        pruned(sys.argv[2])
    else:
        sys.exit(__doc__)
