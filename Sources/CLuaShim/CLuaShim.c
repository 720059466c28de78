#include "CLuaShim.h"
#include "ShimInternal.h"
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Per-state bookkeeping, reachable from any thread of the state through the extra
// space (new threads copy the main thread's extra space) and used as allocator data.
typedef struct lopper_info {
    size_t lua_used, lua_limit;
    size_t external_used, external_limit;
    size_t external_pending;   // tensor bytes pushed since the last GC step
    int in_swift;              // 1 while Swift code (not Lua code) is running
    long long instructions, instruction_limit;
    int period;
    double seconds;            // wall-clock budget of one call from Swift (0: none)
    double deadline;           // monotonic time the running call must end by (0: none)
    char *error;               // message the trampoline raises, set by Swift
    size_t error_length;
    int error_location;
} lopper_info;

typedef struct lopper_object {
    void *object;
    size_t external_bytes;
} lopper_object;

static lopper_swift_entry swift_entry = NULL;
static lopper_release_fn swift_release = NULL;
static atomic_int interrupt_flag = 0;

static const char *const function_metatable = "lopper.SwiftFunction";

static lopper_info *info_of(lua_State *L) {
    return *(lopper_info **)lua_getextraspace(L);
}

static int doom_of(lopper_info *info);
static void push_doom_message(lua_State *L, lopper_info *info, int reason);

// MARK: - Allocator and state

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    lopper_info *info = (lopper_info *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        info->lua_used -= old;
        return NULL;
    }
    // Refuse only while Lua code runs (finalizers included: they run only from Lua
    // code or from lopper_collect, never with in_swift set, since plugins cannot
    // define __gc): a refusal raises, and it must not raise through a Swift frame
    // (the trampoline checks the limit after Swift returns).
    if (info->lua_limit && !info->in_swift && nsize > old &&
        info->lua_used - old + nsize > info->lua_limit) {
        return NULL;
    }
    // Large strings and tables cost time in single instructions (s .. s, string.rep):
    // past the deadline they are refused, and lopper_pcall reports the limit.
    if (!info->in_swift && nsize > old && nsize - old >= ((size_t)64 << 10) && doom_of(info)) {
        return NULL;
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL) return NULL;
    info->lua_used = info->lua_used - old + nsize;
    return block;
}

static int panic_handler(lua_State *L) {
    const char *message = lua_tostring(L, -1);
    fprintf(stderr, "lopper: unprotected Lua error: %s\n", message ? message : "(no message)");
    fflush(stderr);
    return 0;  // Lua aborts after this
}

lua_State *lopper_newstate(size_t lua_limit, size_t external_limit) {
    lopper_info *info = (lopper_info *)calloc(1, sizeof(lopper_info));
    if (info == NULL) return NULL;
    info->lua_limit = lua_limit;
    info->external_limit = external_limit;
    info->in_swift = 1;
    info->period = 1000;
    lua_State *L = lua_newstate(limited_alloc, info);
    if (L == NULL) {
        free(info);
        return NULL;
    }
    *(lopper_info **)lua_getextraspace(L) = info;
    lua_atpanic(L, panic_handler);
    return L;
}

void lopper_close(lua_State *L) {
    lopper_info *info = info_of(L);
    lua_close(L);  // runs finalizers, which still use info
    free(info->error);
    free(info);
}

size_t lopper_lua_bytes(lua_State *L) { return info_of(L)->lua_used; }
size_t lopper_external_bytes(lua_State *L) { return info_of(L)->external_used; }
size_t lopper_lua_limit(lua_State *L) { return info_of(L)->lua_limit; }
size_t lopper_external_limit(lua_State *L) { return info_of(L)->external_limit; }

void lopper_open_safe_libs(lua_State *L) {
    static const luaL_Reg libraries[] = {
        {LUA_GNAME, luaopen_base}, {LUA_TABLIBNAME, luaopen_table},
        {LUA_STRLIBNAME, luaopen_string}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL}};
    for (const luaL_Reg *library = libraries; library->func; library++) {
        luaL_requiref(L, library->name, library->func, 1);
        lua_pop(L, 1);
    }
}

// MARK: - Protected calls

static int traceback_handler(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (message == NULL) {
        // (A doomed call may run here with hooks off: run no metamethod then.)
        if (lopper_doom_reason(L) == LOPPER_DOOM_NONE && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            message = lua_tostring(L, -1);
        } else {
            message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
        }
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

int lopper_pcall(lua_State *L, int nargs, int nresults) {
    lopper_info *info = info_of(L);
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback_handler);
    lua_insert(L, base);
    int saved = info->in_swift;
    info->in_swift = 0;
    int status = lua_pcall(L, nargs, nresults, base);
    info->in_swift = saved;
    lua_remove(L, base);
    if (status == LUA_ERRMEM && doom_of(info)) {  // refused by the allocator past the deadline
        lua_pop(L, 1);
        push_doom_message(L, info, doom_of(info));
        status = LUA_ERRRUN;
    }
    return status;
}

static int collect_protected(lua_State *L) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

int lopper_collect(lua_State *L) {
    lua_pushcfunction(L, collect_protected);
    return lopper_pcall(L, 0, 0);
}

static int tostring_protected(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int lopper_tostring_protected(lua_State *L, int index) {
    index = lua_absindex(L, index);
    lua_pushcfunction(L, tostring_protected);
    lua_pushvalue(L, index);
    return lopper_pcall(L, 1, 1);
}

// MARK: - Swift functions and the trampoline

void lopper_set_swift_hooks(lopper_swift_entry entry, lopper_release_fn release) {
    swift_entry = entry;
    swift_release = release;
}

void lopper_set_error(lua_State *L, const char *message, size_t length, int add_location) {
    lopper_info *info = info_of(L);
    free(info->error);
    info->error = (char *)malloc(length + 1);
    if (info->error != NULL) {
        memcpy(info->error, message, length);
        info->error[length] = 0;
    }
    info->error_length = info->error != NULL ? length : 0;
    info->error_location = add_location;
}

static int raise_pending_error(lua_State *L, lopper_info *info) {
    if (info->error_location) luaL_where(L, 1); else lua_pushliteral(L, "");
    if (info->error != NULL) lua_pushlstring(L, info->error, info->error_length);
    else lua_pushliteral(L, "error in a Swift function (message lost: out of memory)");
    free(info->error);
    info->error = NULL;
    lua_concat(L, 2);
    return lua_error(L);
}

// After a Swift function: raise a pending interrupt, let the collector see tensor
// memory it cannot measure, and enforce the limits that were relaxed during the call.
static void after_swift(lua_State *L, lopper_info *info) {
    lopper_raise_if_doomed(L);
    if (info->external_pending >= (1u << 20)) {
        size_t kilobytes = info->external_pending / 1024;
        info->external_pending = 0;
        lua_gc(L, LUA_GCSTEP, kilobytes > INT_MAX ? INT_MAX : (int)kilobytes);
    }
    if ((info->external_limit && info->external_used > info->external_limit) ||
        (info->lua_limit && info->lua_used > info->lua_limit)) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (info->external_limit && info->external_used > info->external_limit) {
            luaL_error(L, "not enough memory: tensors would hold %d MiB, over the limit of %d MiB",
                       (int)(info->external_used >> 20), (int)(info->external_limit >> 20));
        }
        if (info->lua_limit && info->lua_used > info->lua_limit) {
            luaL_error(L, "not enough memory: over the Lua memory limit of %d MiB",
                       (int)(info->lua_limit >> 20));
        }
    }
}

static int lopper_trampoline(lua_State *L) {
    lopper_info *info = info_of(L);
    lopper_object *box = (lopper_object *)lua_touserdata(L, lua_upvalueindex(1));
    if (box == NULL || box->object == NULL || swift_entry == NULL) {
        return luaL_error(L, "Swift function is no longer available");
    }
    // A loop of binding calls runs few VM instructions: charge each call too.
    lopper_raise_if_doomed(L);
    info->in_swift = 1;
    int results = swift_entry(L, box->object);
    // Only Lua code calls the trampoline, so Lua code runs again now.
    info->in_swift = 0;
    // The Swift frame has returned: raising is safe from here on.
    if (results < 0) return raise_pending_error(L, info);
    after_swift(L, info);
    return results;
}

static void ensure_function_metatable(lua_State *L) {
    if (luaL_newmetatable(L, function_metatable)) {
        lua_pushcfunction(L, lopper_object_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
}

void lopper_push_swift_function(lua_State *L, void *retained_box) {
    lopper_object *box = (lopper_object *)lua_newuserdatauv(L, sizeof(lopper_object), 0);
    box->object = retained_box;
    box->external_bytes = 0;
    ensure_function_metatable(L);
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, lopper_trampoline, 1);
}

// MARK: - Objects

void lopper_push_object(lua_State *L, void *retained_object, size_t external_bytes, const char *metatable) {
    lopper_info *info = info_of(L);
    lopper_object *box = (lopper_object *)lua_newuserdatauv(L, sizeof(lopper_object), 0);
    box->object = retained_object;
    box->external_bytes = external_bytes;
    luaL_setmetatable(L, metatable);
    info->external_used += external_bytes;
    info->external_pending += external_bytes;
}

void *lopper_to_object(lua_State *L, int index, const char *metatable) {
    lopper_object *box = (lopper_object *)luaL_testudata(L, index, metatable);
    return box != NULL ? box->object : NULL;
}

int lopper_object_gc(lua_State *L) {
    lopper_object *box = (lopper_object *)lua_touserdata(L, 1);
    if (box != NULL && box->object != NULL) {
        lopper_info *info = info_of(L);
        void *object = box->object;
        box->object = NULL;
        info->external_used -= box->external_bytes < info->external_used ? box->external_bytes : info->external_used;
        box->external_bytes = 0;
        if (swift_release != NULL) swift_release(object);
    }
    return 0;
}

// MARK: - Limits: instructions, time, interrupts

static double monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static int doom_of(lopper_info *info) {
    if (atomic_load_explicit(&interrupt_flag, memory_order_relaxed)) return LOPPER_DOOM_INTERRUPT;
    if (info->instruction_limit > 0 && info->instructions > info->instruction_limit) return LOPPER_DOOM_INSTRUCTIONS;
    if (info->deadline > 0 && monotonic_seconds() > info->deadline) return LOPPER_DOOM_TIME;
    return LOPPER_DOOM_NONE;
}

int lopper_doom_reason(lua_State *L) { return doom_of(info_of(L)); }

// "file:line: " of the innermost Lua function that is not host code (chunks named
// "=lopper.*"): a limit error points at the plugin's line, wherever it struck.
static void push_plugin_where(lua_State *L) {
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0) continue;
        if (strncmp(ar.source, "=lopper.", 8) == 0) continue;
        lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
        return;
    }
    lua_pushliteral(L, "");
}

static void push_doom_message(lua_State *L, lopper_info *info, int reason) {
    char detail[96];
    switch (reason) {
    case LOPPER_DOOM_INTERRUPT: snprintf(detail, sizeof detail, "interrupted"); break;
    case LOPPER_DOOM_INSTRUCTIONS:
        snprintf(detail, sizeof detail, "sandbox: instruction limit of %lld exceeded", info->instruction_limit);
        break;
    default: snprintf(detail, sizeof detail, "sandbox: time limit of %g seconds exceeded", info->seconds); break;
    }
    push_plugin_where(L);
    lua_pushstring(L, detail);
    lua_concat(L, 2);
}

void lopper_raise_if_doomed(lua_State *L) {
    lopper_info *info = info_of(L);
    int reason = doom_of(info);
    if (reason == LOPPER_DOOM_NONE) return;
    info->in_swift = 0;
    push_doom_message(L, info, reason);
    lua_error(L);
}

// Every `period` instructions, and in a sandbox before every function call too (a C
// library function can run long on few instructions: utf8.len, collectgarbage).
static void count_hook(lua_State *L, lua_Debug *ar) {
    lopper_info *info = info_of(L);
    info->in_swift = 0;  // hooks run only while Lua code runs
    if (ar->event == LUA_HOOKCOUNT) info->instructions += info->period;
    lopper_raise_if_doomed(L);
}

int lopper_doom_check(lua_State *L) {
    // Called from Lua only: whatever a caught error skipped, Lua code runs now.
    info_of(L)->in_swift = 0;
    lopper_raise_if_doomed(L);
    return lua_gettop(L);
}

int lopper_is_doomed(lua_State *L) {
    lua_pushboolean(L, lopper_doom_reason(L) != LOPPER_DOOM_NONE);
    return 1;
}

void lopper_set_hook(lua_State *L, long long instruction_limit, int period, int every_call) {
    lopper_info *info = info_of(L);
    info->instruction_limit = instruction_limit;
    info->period = period > 0 ? period : 1000;
    info->instructions = 0;
    lua_sethook(L, count_hook, LUA_MASKCOUNT | (every_call ? LUA_MASKCALL : 0), info->period);
}

void lopper_set_time_limit(lua_State *L, double seconds) {
    info_of(L)->seconds = seconds > 0 ? seconds : 0;
}

void lopper_start_budget(lua_State *L) {
    lopper_info *info = info_of(L);
    info->instructions = 0;
    info->deadline = info->seconds > 0 ? monotonic_seconds() + info->seconds : 0;
}

long long lopper_instructions(lua_State *L) { return info_of(L)->instructions; }

static void sigint_handler(int signal_number) {
    (void)signal_number;
    if (atomic_exchange(&interrupt_flag, 1)) {
        // Second Ctrl-C before the first was handled: stop now.
        static const char message[] = "\nlopper: interrupted\n";
        (void)!write(2, message, sizeof message - 1);
        _exit(130);
    }
}

void lopper_install_sigint(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = sigint_handler;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
}

void lopper_interrupt_request(void) { atomic_store(&interrupt_flag, 1); }
int lopper_interrupt_pending(void) { return atomic_load_explicit(&interrupt_flag, memory_order_relaxed); }
void lopper_interrupt_clear(void) { atomic_store(&interrupt_flag, 0); }
