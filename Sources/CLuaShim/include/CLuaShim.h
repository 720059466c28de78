#ifndef CLUASHIM_H
#define CLUASHIM_H
// The C side of the Lua bridge: the Lua macros Swift cannot import, the trampoline
// that runs Swift functions and raises their errors only after the Swift frame has
// returned, a memory-limiting allocator, the instruction-count hook and Ctrl-C.
//
// Rule of the bridge: no longjmp ever crosses a Swift frame. Swift code never calls
// lua_error or luaL_check*; it returns LOPPER_SWIFT_ERROR after lopper_set_error and
// the trampoline raises. While Swift code runs, the limiting allocator does not
// refuse (the limit is checked when the Swift function returns), so an allocation
// made from Swift cannot raise a memory error either.
#include <stddef.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#define LOPPER_SWIFT_ERROR (-1)

// MARK: - Macros as functions

static inline void lopper_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void lopper_newtable(lua_State *L) { lua_newtable(L); }
static inline const char *lopper_tostring(lua_State *L, int i) { return lua_tostring(L, i); }
static inline lua_Number lopper_tonumber(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }
static inline lua_Integer lopper_tointeger(lua_State *L, int i, int *isnum) { return lua_tointegerx(L, i, isnum); }
static inline int lopper_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int lopper_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int lopper_isnoneornil(lua_State *L, int i) { return lua_isnoneornil(L, i); }
static inline int lopper_isnil(lua_State *L, int i) { return lua_isnil(L, i); }
static inline void lopper_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcfunction(L, f); }
static inline void lopper_insert(lua_State *L, int i) { lua_insert(L, i); }
static inline void lopper_remove(lua_State *L, int i) { lua_remove(L, i); }
static inline void lopper_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline const char *lopper_typename_at(lua_State *L, int i) { return luaL_typename(L, i); }

// MARK: - States

/// A new state whose allocator refuses to grow the Lua heap past `lua_limit` bytes
/// (0: no limit) and whose tensors may hold at most `external_limit` bytes (0: no
/// limit). Sets a panic handler that reports the error before Lua aborts.
lua_State *lopper_newstate(size_t lua_limit, size_t external_limit);
/// Closes the state and frees its bookkeeping.
void lopper_close(lua_State *L);
/// Bytes of the Lua heap in use, and bytes held by tensors Lua references.
size_t lopper_lua_bytes(lua_State *L);
size_t lopper_external_bytes(lua_State *L);
size_t lopper_lua_limit(lua_State *L);
size_t lopper_external_limit(lua_State *L);
/// Opens the standard libraries that are safe for plugins (base, table, string,
/// math, utf8, coroutine) without io, os, package or debug.
void lopper_open_safe_libs(lua_State *L);

/// Protected call with a traceback message handler. Returns the Lua status; on
/// error the message (with "\nstack traceback:" appended) is on top of the stack.
/// Lua code inside runs with the memory limit in force (whoever calls it).
int lopper_pcall(lua_State *L, int nargs, int nresults);
/// A full garbage collection as a protected call, with the limits in force: what
/// the collection runs cannot raise through the caller. Status as lopper_pcall.
int lopper_collect(lua_State *L);
/// Pushes `tostring(value at index)` (which may run `__tostring`) as a protected
/// call. Status as lopper_pcall: on error the message is pushed instead.
int lopper_tostring_protected(lua_State *L, int index);

// MARK: - Swift functions

/// The single Swift entry point: runs the Swift function `box` against the stack
/// and returns the number of results, or LOPPER_SWIFT_ERROR after lopper_set_error.
typedef int (*lopper_swift_entry)(lua_State *L, void *box);
/// Releases a retained Swift object held by a userdata (called from __gc).
typedef void (*lopper_release_fn)(void *object);
void lopper_set_swift_hooks(lopper_swift_entry entry, lopper_release_fn release);

/// Records the message that the trampoline raises when the Swift function returns.
/// `add_location` prefixes "chunk:line:" of the calling Lua code.
void lopper_set_error(lua_State *L, const char *message, size_t length, int add_location);

/// Pushes a Lua function that calls the Swift function `retained_box` (a retained
/// object reference, released when the function is collected).
void lopper_push_swift_function(lua_State *L, void *retained_box);

// MARK: - Objects as userdata

/// Pushes a full userdata holding `retained_object` with the metatable registered
/// under `metatable`; `external_bytes` are counted against the state's tensor limit
/// and drive the garbage collector (Lua cannot see memory held in Swift).
void lopper_push_object(lua_State *L, void *retained_object, size_t external_bytes, const char *metatable);
/// The object in the userdata at `index` if it has metatable `metatable`, else NULL.
void *lopper_to_object(lua_State *L, int index, const char *metatable);
/// The __gc metamethod for every object userdata.
int lopper_object_gc(lua_State *L);

// MARK: - Limits and interrupts

/// Sets the count hook: every `period` instructions (and before every function call
/// when `every_call`) it checks the interrupt flag and, when set, the instruction
/// limit and the deadline of the running call.
void lopper_set_hook(lua_State *L, long long instruction_limit, int period, int every_call);
/// Seconds of wall-clock time one call from Swift may take (0: no limit). Kernels
/// and C library functions charge against it too: the trampoline checks it before
/// and after every Swift function, the pattern functions while they match.
void lopper_set_time_limit(lua_State *L, double seconds);
/// Starts the budget (instructions and time) of a call from Swift into Lua.
void lopper_start_budget(lua_State *L);
/// The former name of lopper_start_budget.
static inline void lopper_reset_instructions(lua_State *L) { lopper_start_budget(L); }
/// Returns its arguments, or raises when the state is interrupted or over its
/// instruction or time limit: wrapped around pcall/xpcall/coroutine.resume so that
/// Lua code cannot catch those errors and go on.
int lopper_doom_check(lua_State *L);
/// Returns true when the running call is interrupted or over a limit (xpcall's
/// guard then skips the script's message handler, which would run with hooks off).
int lopper_is_doomed(lua_State *L);
long long lopper_instructions(lua_State *L);

/// Replaces string.find, match, gmatch and gsub (in the string table, so the
/// methods of strings too) with versions that count their matching steps and stop
/// like the count hook does: Lua's own matcher can backtrack for hours in C.
void lopper_install_bounded_patterns(lua_State *L);

/// Installs a SIGINT handler that sets the interrupt flag (a second Ctrl-C while the
/// flag is still set exits with status 130).
void lopper_install_sigint(void);
void lopper_interrupt_request(void);
int lopper_interrupt_pending(void);
void lopper_interrupt_clear(void);

#endif
