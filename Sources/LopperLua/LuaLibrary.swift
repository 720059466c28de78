/// The part of the `lopper` module written in Lua: selection and rescale helpers that
/// compose kernels (no element loops). Installed in every state; the plugin host's
/// `score` path and the reference plugins use them, and so can anyone.
enum LuaLibrary {
    /// Returns a table name -> function; LopperModule adds each to `lopper`.
    static let source = #"""
    local lopper = ...
    local floor, type, tostring, error = math.floor, type, tostring, error
    local library = {}

    local function count(keep, n)
      return floor(keep * n + 0.5)
    end

    -- A BOOL mask keeping the highest scores: a fraction `keep` of the whole tensor,
    -- of each row, n of every m along rows, or whole rows / columns ranked by the sum
    -- of their scores.
    function library.keep_top(scores, keep, granularity, options)
      if type(keep) ~= "number" or keep < 0 or keep > 1 then
        error("keep_top: keep must be a number in [0, 1], got " .. tostring(keep), 2)
      end
      granularity = granularity or "tensor"
      local shape = scores:shape()
      if granularity == "tensor" then
        return scores:topk_mask(count(keep, scores:numel()))
      elseif granularity == "row" then
        return scores:topk_mask(count(keep, shape[#shape]), "row")
      elseif granularity == "nm" then
        local n, m = options and options.n, options and options.m
        if type(n) ~= "number" or type(m) ~= "number" then
          error("keep_top: granularity \"nm\" needs options n and m (e.g. n = 2, m = 4)", 2)
        end
        return scores:nm_mask(n, m)
      elseif granularity == "rows" then
        local rows = scores:row_sums()
        local kept = rows:topk_mask(count(keep, rows:numel()))
        return lopper.ones(shape):scale_rows(kept):gt(0)
      elseif granularity == "cols" then
        local cols = scores:col_sums()
        local kept = cols:topk_mask(count(keep, cols:numel()))
        return lopper.ones(shape):scale_cols(kept):gt(0)
      end
      error("keep_top: granularity must be tensor, row, nm, rows or cols, got " .. tostring(granularity), 2)
    end

    -- The factor for kept entries: "dare" 1/(1-p), "q" 1/q, "l1" ||D||_1 / ||m*D||_1
    -- (norm matching, as mergekit rescales), "none" 1.
    function library.rescale_factor(how, delta, mask, p, q)
      if how == "none" or how == nil then return 1 end
      if how == "dare" then
        if p >= 1 then return 1 end
        return 1 / (1 - p)
      elseif how == "q" then
        if type(q) ~= "number" or q <= 0 or q > 1 then
          error("rescale_factor: rescale \"q\" needs q in (0, 1], got " .. tostring(q), 2)
        end
        return 1 / q
      elseif how == "l1" then
        local kept = delta:where(mask, 0):norm(1)
        if kept == 0 then return 1 end
        return delta:norm(1) / kept
      end
      error("rescale_factor: rescale must be dare, q, l1 or none, got " .. tostring(how), 2)
    end

    return library
    """#
}
