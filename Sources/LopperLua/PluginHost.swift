/// The Lua side of a loaded plugin, run inside its sandbox: loads and validates the
/// plugin table, builds `ctx` for each tensor and calls the hooks. Swift calls it
/// through the functions this chunk returns; plugin code cannot reach them.
enum PluginHost {
    static let source = #"""
    local source, chunkname, job = ...
    local type, tostring, pairs, ipairs, error, setmetatable = type, tostring, pairs, ipairs, error, setmetatable
    local lopper = lopper
    -- Swift prefixes the plugin's path to every error.
    local function fail(message) error(message, 0) end

    local plugin = source
    if type(source) == "string" then
      local chunk, problem = load(source, chunkname, "t")
      if not chunk then error(problem, 0) end
      plugin = chunk()
    end

    if type(plugin) ~= "table" then fail("a plugin must return a table, got " .. type(plugin)) end
    for _, field in ipairs({ "name", "version", "summary" }) do
      if type(plugin[field]) ~= "string" or plugin[field] == "" then
        fail("field '" .. field .. "' must be a non-empty string")
      end
    end
    if not plugin.name:match("^[%w_%-]+$") then
      fail("name '" .. plugin.name .. "' may hold only letters, digits, '_' and '-'")
    end
    if plugin.api ~= 1 then
      fail("field 'api' must be 1 (this Lopper speaks plugin API 1), got " .. tostring(plugin.api))
    end
    for _, hook in ipairs({ "apply", "prune", "score", "rescale" }) do
      if plugin[hook] ~= nil and type(plugin[hook]) ~= "function" then
        fail("hook '" .. hook .. "' must be a function, got " .. type(plugin[hook]))
      end
    end
    if not (plugin.apply or plugin.prune or plugin.score) then
      fail("a plugin needs a hook: prune(delta, ctx), score(delta, ctx) or apply(ctx)")
    end
    local params = plugin.params or {}
    if type(params) ~= "table" then fail("field 'params' must be a table") end
    local types = { number = true, integer = true, string = true, boolean = true }
    local specs = {}
    for key, spec in pairs(params) do
      local at = "parameter '" .. tostring(key) .. "'"
      if type(key) ~= "string" or not key:match("^[%a_][%w_]*$") then fail(at .. ": names are identifiers") end
      if type(spec) ~= "table" then fail(at .. ": must be a table like { type = \"number\", default = 0.9 }") end
      if not types[spec.type] then fail(at .. ": type must be number, integer, string or boolean") end
      local default = spec.default
      local kind = (spec.type == "integer") and "number" or spec.type
      if default ~= nil and type(default) ~= kind then fail(at .. ": default must be a " .. kind) end
      if spec.type == "integer" and default ~= nil and default % 1 ~= 0 then fail(at .. ": default must be an integer") end
      for _, bound in ipairs({ "min", "max" }) do
        if spec[bound] ~= nil and type(spec[bound]) ~= "number" then fail(at .. ": " .. bound .. " must be a number") end
      end
      if type(default) == "number" and ((spec.min and default < spec.min) or (spec.max and default > spec.max)) then
        fail(at .. ": default " .. tostring(default) .. " is outside its min/max")
      end
      local choices = ""
      if spec.choices ~= nil then
        if type(spec.choices) ~= "table" or #spec.choices == 0 then fail(at .. ": choices must be a list of strings") end
        for _, choice in ipairs(spec.choices) do
          if type(choice) ~= "string" or choice:find("[|\t\n]") then fail(at .. ": choices must be plain strings") end
        end
        choices = table.concat(spec.choices, "|")
        if default ~= nil and not ("|" .. choices .. "|"):find("|" .. default .. "|", 1, true) then
          fail(at .. ": default \"" .. default .. "\" is not one of its choices")
        end
      end
      local doc = tostring(spec.doc or ""):gsub("[\t\n]", " ")
      specs[#specs + 1] = table.concat({ key, spec.type, default == nil and "" or tostring(default),
        spec.min and tostring(spec.min) or "", spec.max and tostring(spec.max) or "", choices, doc }, "\t")
    end
    table.sort(specs)
    if plugin.score and not params.rate then
      fail("a plugin with score(delta, ctx) needs a 'rate' parameter (the core keeps the top 1 - rate)")
    end

    local Ctx = {}
    Ctx.__index = Ctx
    -- The job (tensor) each ctx was made for: Swift refuses a ctx kept past its tensor.
    local job_of = setmetatable({}, { __mode = "k" })
    function Ctx:delta() return job.delta(job_of[self]) end
    function Ctx:dare(keep, scale) return job.dare(job_of[self], keep, scale) end
    function Ctx:masked(mask, scale) return job.masked(job_of[self], mask, scale) end

    local Rng = {}
    Rng.__index = Rng
    local function shape_of(x) if type(x) == "userdata" then return x:shape() end return x end
    function Rng:bernoulli(shape, keep) return lopper.bernoulli(shape_of(shape), keep, self.seed, self.name) end
    function Rng:uniform(shape) return lopper.rand(shape_of(shape), self.seed, self.name) end
    function Rng:stream(label) return setmetatable({ seed = self.seed, name = self.name .. "#" .. tostring(label) }, Rng) end

    local function is_tensor(x) return type(x) == "userdata" and type(x.numel) == "function" end

    local host = {}

    function host.describe()
      local hooks = {}
      for _, hook in ipairs({ "apply", "prune", "score", "rescale" }) do
        if plugin[hook] then hooks[#hooks + 1] = hook end
      end
      return plugin.name, plugin.version, plugin.summary, table.concat(hooks, ","), table.concat(specs, "\n")
    end

    -- One tensor: returns "output", tensor | "delta", tensor | "unchanged".
    function host.run(fields, id)
      local ctx = setmetatable(fields, Ctx)
      job_of[ctx] = id
      ctx.rng = setmetatable({ seed = fields.seed, name = fields.name }, Rng)
      ctx.report = function(key, value) job.report(id, key, value) end
      ctx.note = function(text) job.note(id, text) end
      if plugin.apply then
        local out = plugin.apply(ctx)
        if out == nil then return "unchanged" end
        if not is_tensor(out) then fail("apply must return a tensor or nil, got " .. type(out)) end
        return "output", out
      end
      local delta = ctx:delta()
      if plugin.prune then
        local pruned = plugin.prune(delta, ctx)
        if pruned == nil then return "unchanged" end
        if not is_tensor(pruned) then fail("prune must return a tensor or nil, got " .. type(pruned)) end
        return "delta", pruned
      end
      local p = ctx.params.rate
      if p == 0 then return "unchanged" end  -- every rescale is 1 at p = 0: the identity
      local scores = plugin.score(delta, ctx)
      if not is_tensor(scores) then fail("score must return a tensor, got " .. type(scores)) end
      local mask = lopper.keep_top(scores, 1 - p, ctx.params.granularity, ctx.params)
      local scale
      if plugin.rescale then
        scale = plugin.rescale(ctx, delta, mask)
        if type(scale) ~= "number" then fail("rescale must return a number, got " .. type(scale)) end
      else
        scale = lopper.rescale_factor(ctx.params.rescale or "none", delta, mask, p, ctx.params.q)
      end
      return "output", ctx:masked(mask, scale)
    end

    return host
    """#
}
