// string.find, match, gmatch and gsub over the step-counting matcher
// (PatternMatcher.c), with the arguments, results and errors of Lua 5.4's own.
#include "CLuaShim.h"
#include "PatternMatcher.h"
#include <ctype.h>
#include <string.h>

#define SPECIALS "^$*+?.([%-"

// A 1-based, possibly negative position as a 0-based offset (Lua's rules).
static size_t start_offset(lua_Integer position, size_t length) {
    if (position > 0) return (size_t)position - 1;
    if (position == 0 || position < -(lua_Integer)length) return 0;
    return (size_t)((lua_Integer)length + position);
}

static int has_specials(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++) {
        if (p[i] != 0 && strchr(SPECIALS, p[i]) != NULL) return 1;
    }
    return 0;
}

static const char *find_plain(LopperMatcher *m, const char *s, size_t ls, const char *p, size_t lp) {
    if (lp == 0) return s;
    if (lp > ls) return NULL;
    const char *last = s + (ls - lp);
    while (s <= last) {
        const char *hit = memchr(s, *p, (size_t)(last - s) + 1);
        if (hit == NULL) return NULL;
        lopper_matcher_charge(m, (unsigned)(lp < STEP_INTERVAL ? lp : STEP_INTERVAL));
        if (memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
        s = hit + 1;
    }
    return NULL;
}

static int find_or_match(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    LopperMatcher m;
    lopper_matcher_init(&m, L, s, ls, p, lp);
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *hit = find_plain(&m, s + init, ls - init, p, lp);
        if (hit != NULL) {
            lua_pushinteger(L, (hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)((size_t)(hit - s) + lp));
            return 2;
        }
    } else {
        int anchored = *p == '^';
        if (anchored) p++;
        const char *start = s + init;
        do {
            lopper_matcher_reset(&m);
            const char *end = lopper_matcher_match(&m, start, p);
            if (end != NULL) {
                if (!find) return lopper_matcher_push_captures(&m, start, end);
                lua_pushinteger(L, (start - s) + 1);
                lua_pushinteger(L, end - s);
                return lopper_matcher_push_captures(&m, NULL, NULL) + 2;
            }
        } while (start++ < m.src_end && !anchored);
    }
    luaL_pushfail(L);
    return 1;
}

static int bounded_find(lua_State *L) { return find_or_match(L, 1); }
static int bounded_match(lua_State *L) { return find_or_match(L, 0); }

typedef struct GMatch {
    const char *next, *pattern, *last_match;
    LopperMatcher m;
} GMatch;

static int gmatch_step(lua_State *L) {
    GMatch *g = (GMatch *)lua_touserdata(L, lua_upvalueindex(3));
    g->m.L = L;  // may run in another coroutine than the one that made it
    for (const char *start = g->next; start <= g->m.src_end; start++) {
        lopper_matcher_reset(&g->m);
        const char *end = lopper_matcher_match(&g->m, start, g->pattern);
        if (end != NULL && end != g->last_match) {
            g->next = g->last_match = end;
            return lopper_matcher_push_captures(&g->m, start, end);
        }
    }
    return 0;
}

static int bounded_gmatch(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) init = ls + 1;  // starts after the end: no match
    lua_settop(L, 2);  // the subject and the pattern stay alive as upvalues
    GMatch *g = (GMatch *)lua_newuserdatauv(L, sizeof(GMatch), 0);
    lopper_matcher_init(&g->m, L, s, ls, p, lp);
    g->next = s + init;
    g->pattern = p;
    g->last_match = NULL;
    lua_pushcclosure(L, gmatch_step, 3);
    return 1;
}

// Appends the replacement of the match s..e to `b` (gsub's third argument).
static void add_replacement(LopperMatcher *m, luaL_Buffer *b, const char *s, const char *e, int kind) {
    lua_State *L = m->L;
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int count = lopper_matcher_push_captures(m, s, e);
        lua_call(L, count, 1);
    } else if (kind == LUA_TTABLE) {
        lopper_matcher_push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        size_t length;
        const char *text = lua_tolstring(L, 3, &length);
        const char *end = text + length;
        for (const char *escape; (escape = memchr(text, '%', (size_t)(end - text))) != NULL; text = escape + 2) {
            luaL_addlstring(b, text, (size_t)(escape - text));
            char c = escape[1];
            if (c == '%') {
                luaL_addchar(b, '%');
            } else if (c == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else if (isdigit((unsigned char)c)) {
                lopper_matcher_push_capture(m, c - '1', s, e);
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
                luaL_addvalue(b);
            } else {
                luaL_error(L, "invalid use of '%c' in replacement string", '%');
            }
        }
        luaL_addlstring(b, text, (size_t)(end - text));
        return;
    }
    if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    } else {
        luaL_addvalue(b);
    }
}

static int bounded_gsub(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int kind = lua_type(L, 3);
    lua_Integer limit = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION || kind == LUA_TTABLE, 3,
                     "string/function/table");
    int anchored = *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    LopperMatcher m;
    lopper_matcher_init(&m, L, s, ls, p, lp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *src = s, *last_match = NULL;
    lua_Integer count = 0;
    while (count < limit) {
        lopper_matcher_reset(&m);
        const char *end = lopper_matcher_match(&m, src, p);
        if (end != NULL && end != last_match) {
            count++;
            add_replacement(&m, &b, src, end, kind);
            src = last_match = end;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchored) break;
    }
    luaL_addlstring(&b, src, (size_t)(m.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, count);
    return 2;
}

void lopper_install_bounded_patterns(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"find", bounded_find}, {"match", bounded_match}, {"gmatch", bounded_gmatch}, {"gsub", bounded_gsub},
        {NULL, NULL}};
    if (lua_getglobal(L, "string") == LUA_TTABLE) luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
