-- Writes a small pre-trained / fine-tuned pair laid out like a Hugging Face Llama
-- folder (config.json, tokenizer_config.json, BF16 weights in two shards with an index).
--   lopper run Scripts/make_demo_pair.lua OUT_FOLDER [SEED [HIDDEN INTERMEDIATE LAYERS VOCAB SHARD_BYTES]]
-- (the benchmark uses the size arguments for a larger pair)
local out, seed = arg[1], tonumber(arg[2] or "7")
assert(out, "usage: lopper run Scripts/make_demo_pair.lua OUT_FOLDER [SEED [HIDDEN INTERMEDIATE LAYERS VOCAB SHARD_BYTES]]")
local hidden, intermediate = tonumber(arg[3] or "64"), tonumber(arg[4] or "176")
local layers, vocab, shard_bytes = tonumber(arg[5] or "4"), tonumber(arg[6] or "256"), tonumber(arg[7] or "300000")

local function centered(shape, name, scale, shift)
  return (lopper.rand(shape, seed, name) - 0.5) * scale + (shift or 0)
end

-- The base model: weights ~ U(-0.1, 0.1), norms at 1.
local names, shapes = {}, {}
local function add(name, shape) names[#names + 1] = name; shapes[name] = shape end
add("model.embed_tokens.weight", { vocab, hidden })
for i = 0, layers - 1 do
  local p = "model.layers." .. i .. "."
  add(p .. "input_layernorm.weight", { hidden })
  for _, m in ipairs({ "q_proj", "k_proj", "v_proj", "o_proj" }) do add(p .. "self_attn." .. m .. ".weight", { hidden, hidden }) end
  add(p .. "mlp.gate_proj.weight", { intermediate, hidden })
  add(p .. "mlp.up_proj.weight", { intermediate, hidden })
  add(p .. "mlp.down_proj.weight", { hidden, intermediate })
  add(p .. "post_attention_layernorm.weight", { hidden })
end
add("model.norm.weight", { hidden })
add("lm_head.weight", { vocab, hidden })

local function model(finetuned)
  local i = 0
  return function()
    i = i + 1
    local name = names[i]
    if not name then return nil end
    local shape = shapes[name]
    local w = #shape == 1 and lopper.ones(shape) or centered(shape, "base/" .. name, 0.2)
    if finetuned then
      -- Fine-tuning moves every weight a little; deeper layers move more, with a small drift.
      local layer = tonumber(name:match("layers%.(%d+)%.")) or 0
      w = w + centered(shape, "delta/" .. name, 0.003 * (1 + layer), 0.0003 * layer)
    end
    return name, w
  end
end

local config = string.format([[{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16",
  "hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": %d, "num_attention_heads": 4,
  "num_key_value_heads": 4, "vocab_size": %d, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "max_position_embeddings": 256, "tie_word_embeddings": false
}
]], hidden, intermediate, layers, vocab)
for _, which in ipairs({ "base", "finetuned" }) do
  local folder = out .. "/" .. which
  lopper.save(model(which == "finetuned"), folder, { dtype = "bf16", shard_size = shard_bytes, overwrite = true,
    metadata = { source = "lopper demo " .. which } })
  for file, text in pairs({ ["config.json"] = config, ["tokenizer_config.json"] = '{"model_max_length": 256}\n' }) do
    local f = assert(io.open(folder .. "/" .. file, "w"))
    f:write(text)
    f:close()
  end
  print("wrote " .. folder)
end
