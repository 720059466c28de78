-- Interrupts and the limits must stop a script: pcall, xpcall, coroutine.resume and
-- coroutine.close re-raise them, and a message handler is skipped once the call is doomed.
local check, doomed, type = __lopper_doom_check, __lopper_is_doomed, type
local rawpcall, rawxpcall, resume, close = pcall, xpcall, coroutine.resume, coroutine.close
__lopper_doom_check, __lopper_is_doomed = nil, nil
pcall = function(...) return check(rawpcall(...)) end
xpcall = function(f, handler, ...)
  if type(handler) ~= "function" then return check(rawxpcall(f, handler, ...)) end
  return check(rawxpcall(f, function(e) if doomed() then return e end return handler(e) end, ...))
end
coroutine.resume = function(...) return check(resume(...)) end
coroutine.close = function(...) return check(close(...)) end
