-- Checkpoints and lazy deltas: save fixtures, load them back, compare values.
local root = os.tmpname()
os.remove(root)
local function cleanup() os.execute("rm -rf '" .. root .. "' '" .. root .. ".safetensors' '" .. root .. "-ft'") end

local function same(a, b, what)
  assert(a:numel() == b:numel(), what .. ": element counts differ")
  local x, y = a:totable(), b:totable()
  for i = 1, #x do
    assert(math.abs(x[i] - y[i]) <= 1e-6 * math.max(1, math.abs(y[i])),
           what .. "[" .. i .. "] = " .. tostring(x[i]) .. ", expected " .. tostring(y[i]))
  end
end

local ok, failure = pcall(function()
  local w = lopper.from_table({{1, 2, 3}, {4, 5, 6}})
  local b = lopper.from_table({0.5, -0.25})
  local e = lopper.from_table({{1, 0}, {0, 1}}, "BF16")
  -- A map is written in name order; the folder gets two shards of at most 24 bytes.
  lopper.save({["layer.weight"] = w, ["layer.bias"] = b, embed = e}, root,
              {shard_size = 24, metadata = {seed = "7", method = "test"}})
  local ck = lopper.load(root)
  assert(#ck == 3, "#ck")
  local names = ck:names()
  assert(names[1] == "embed" and names[2] == "layer.bias" and names[3] == "layer.weight", table.concat(names, ","))
  assert(tostring(ck):find("3 tensors", 1, true), tostring(ck))
  local info = ck:info("embed")
  assert(info.dtype == "BF16" and info.shape[1] == 2 and info.shape[2] == 2 and info.bytes == 8, "info")
  local meta = ck:metadata()
  assert(meta.seed == "7" and meta.method == "test" and meta.format == "pt", "metadata")
  same(ck["layer.weight"], w, "ck[layer.weight]")
  same(ck:tensor("layer.bias"), b, "ck:tensor")
  assert(ck["missing"] == nil, "unknown name gives nil")
  local good, message = pcall(ck.tensor, ck, "layer.weigth")
  assert(not good and message:find('no tensor "layer.weigth" in checkpoint', 1, true)
         and message:find('did you mean "layer.weight"', 1, true), message)
  local seen = {}
  for name, tensor in pairs(ck) do seen[#seen + 1] = name; assert(tensor:numel() > 0) end
  assert(table.concat(seen, ",") == "embed,layer.bias,layer.weight", "pairs order")

  -- A fine-tuned copy: an array of pairs keeps its order; dtype converts floats.
  lopper.save({{"layer.weight", w * 2}, {"layer.bias", b + 1}, {"extra", b}}, root .. "-ft", {dtype = "F32"})
  local d = lopper.delta(ck, lopper.load(root .. "-ft"))
  assert(#d == 2, "#d")
  local dn = d:names()
  assert(dn[1] == "layer.weight" and dn[2] == "layer.bias", table.concat(dn, ","))
  same(d["layer.weight"], w, "delta weight")
  same(d:tensor("layer.bias"), lopper.full({2}, 1), "delta bias")
  same(d:base("layer.bias"), b, "d:base")
  same(d:finetuned("layer.weight"), w * 2, "d:finetuned")
  assert(d["extra"] == nil and d["embed"] == nil, "names outside the delta")
  local count = 0
  for name, delta in pairs(d) do count = count + 1; assert(delta:dtype() == "F32", name) end
  assert(count == 2, "pairs(d)")

  -- Save a delta from an iterator (a coroutine) into one file, in BF16.
  lopper.save(coroutine.wrap(function()
    for name, delta in pairs(d) do coroutine.yield(name, delta * 0.5) end
  end), root .. ".safetensors", {dtype = "bf16"})
  local saved = lopper.load(root .. ".safetensors")
  assert(#saved == 2 and saved:info("layer.weight").dtype == "BF16", "iterator save")
  same(saved["layer.weight"], w * 0.5, "iterator values")
  good, message = pcall(lopper.save, {x = w}, root .. ".safetensors")
  assert(not good and message:find("exists; pass {overwrite = true}", 1, true), message)
  lopper.save({x = w}, root .. ".safetensors", {overwrite = true})
  assert(#lopper.load(root .. ".safetensors") == 1, "overwrite")
end)
cleanup()
assert(ok, failure)
