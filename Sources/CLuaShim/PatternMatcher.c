// Lua 5.4's pattern matcher, written here so that matching counts its steps and
// stops like the count hook does (see PatternMatcher.h): backtracking patterns
// (".-.-.-.-b" on a long subject) end with the limit error instead of running for
// hours inside one C call. Results and errors are those of Lua's string library.
#include "PatternMatcher.h"
#include "ShimInternal.h"
#include <ctype.h>
#include <string.h>

#define MAX_DEPTH 200
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

void lopper_matcher_charge(LopperMatcher *m, unsigned steps) {
    m->steps += steps;
    if (m->steps >= STEP_INTERVAL) {
        m->steps = 0;
        lopper_raise_if_doomed(m->L);
    }
}

void lopper_matcher_init(LopperMatcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
    m->L = L;
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    m->steps = 0;
}

void lopper_matcher_reset(LopperMatcher *m) {
    m->level = 0;
    m->depth = MAX_DEPTH;
}

// MARK: - Character classes

static int class_matches(int c, int class) {
    int result;
    switch (tolower(class)) {
    case 'a': result = isalpha(c); break;
    case 'c': result = iscntrl(c); break;
    case 'd': result = isdigit(c); break;
    case 'g': result = isgraph(c); break;
    case 'l': result = islower(c); break;
    case 'p': result = ispunct(c); break;
    case 's': result = isspace(c); break;
    case 'u': result = isupper(c); break;
    case 'w': result = isalnum(c); break;
    case 'x': result = isxdigit(c); break;
    case 'z': result = (c == 0); break;  // deprecated, still accepted by Lua 5.4
    default: return class == c;  // an escaped character stands for itself
    }
    if (isupper(class)) result = !result;
    return result;
}

// `p` at '[', `last` at the closing ']'.
static int set_matches(int c, const char *p, const char *last) {
    int wanted = 1;
    if (p[1] == '^') {
        wanted = 0;
        p++;
    }
    while (++p < last) {
        if (*p == '%') {
            p++;
            if (class_matches(c, (unsigned char)*p)) return wanted;
        } else if (p[1] == '-' && p + 2 < last) {
            p += 2;
            if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p) return wanted;
        } else if ((unsigned char)*p == c) {
            return wanted;
        }
    }
    return !wanted;
}

// The end of the single-character class starting at `p`.
static const char *class_end(LopperMatcher *m, const char *p) {
    char c = *p++;
    if (c == '%') {
        if (p == m->pat_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^') p++;
        do {  // the first character of a set may be ']'
            if (p == m->pat_end) luaL_error(m->L, "malformed pattern (missing ']')");
            c = *p++;
            if (c == '%' && p < m->pat_end) p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

static int single_matches(LopperMatcher *m, const char *s, const char *p, const char *ep) {
    if (s >= m->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return class_matches(c, (unsigned char)p[1]);
    case '[': return set_matches(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

// MARK: - The matcher

static const char *match_here(LopperMatcher *m, const char *s, const char *p);

static const char *expand_greedy(LopperMatcher *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t count = 0;
    while (single_matches(m, s + count, p, ep)) {
        count++;
        lopper_matcher_charge(m, 1);
    }
    for (; count >= 0; count--) {
        const char *end = match_here(m, s + count, ep + 1);
        if (end != NULL) return end;
    }
    return NULL;
}

static const char *expand_lazy(LopperMatcher *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *end = match_here(m, s, ep + 1);
        if (end != NULL) return end;
        if (!single_matches(m, s, p, ep)) return NULL;
        s++;
    }
}

static const char *open_capture(LopperMatcher *m, const char *s, const char *p, ptrdiff_t kind) {
    if (m->level >= MAX_CAPTURES) luaL_error(m->L, "too many captures");
    m->capture[m->level].start = s;
    m->capture[m->level].length = kind;
    m->level++;
    const char *end = match_here(m, s, p);
    if (end == NULL) m->level--;
    return end;
}

static const char *close_capture(LopperMatcher *m, const char *s, const char *p) {
    int open = m->level - 1;
    while (open >= 0 && m->capture[open].length != CAP_UNFINISHED) open--;
    if (open < 0) luaL_error(m->L, "invalid pattern capture");
    m->capture[open].length = s - m->capture[open].start;
    const char *end = match_here(m, s, p);
    if (end == NULL) m->capture[open].length = CAP_UNFINISHED;
    return end;
}

static const char *match_balance(LopperMatcher *m, const char *s, const char *p) {
    if (p >= m->pat_end - 1) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != p[0]) return NULL;
    char open = p[0], close = p[1];
    int depth = 1;
    while (++s < m->src_end) {
        lopper_matcher_charge(m, 1);
        if (*s == close) {
            if (--depth == 0) return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

static const char *match_backreference(LopperMatcher *m, const char *s, int digit) {
    int index = digit - '1';
    if (index < 0 || index >= m->level || m->capture[index].length == CAP_UNFINISHED) {
        luaL_error(m->L, "invalid capture index %%%d in pattern", index + 1);
    }
    size_t length = (size_t)m->capture[index].length;
    lopper_matcher_charge(m, 1);
    if ((size_t)(m->src_end - s) >= length && memcmp(m->capture[index].start, s, length) == 0) return s + length;
    return NULL;
}

// The end of a match of pattern `p` at `s`, or NULL.
static const char *match_here(LopperMatcher *m, const char *s, const char *p) {
    if (m->depth-- == 0) luaL_error(m->L, "pattern too complex");
    lopper_matcher_charge(m, 1);
    while (p != m->pat_end && s != NULL) {
        switch (*p) {
        case '(':
            s = p[1] == ')' ? open_capture(m, s, p + 2, CAP_POSITION) : open_capture(m, s, p + 1, CAP_UNFINISHED);
            goto done;
        case ')':
            s = close_capture(m, s, p + 1);
            goto done;
        case '$':
            if (p + 1 == m->pat_end) {
                if (s != m->src_end) s = NULL;
                goto done;
            }
            break;
        case '%':
            if (p[1] == 'b') {
                s = match_balance(m, s, p + 2);
                p += 4;
                continue;
            }
            if (p[1] == 'f') {
                p += 2;
                if (*p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = class_end(m, p);
                int before = s == m->src ? 0 : (unsigned char)s[-1];
                int here = s < m->src_end ? (unsigned char)*s : 0;
                if (set_matches(before, p, ep - 1) || !set_matches(here, p, ep - 1)) s = NULL;
                p = ep;
                continue;
            }
            if (isdigit((unsigned char)p[1])) {
                s = match_backreference(m, s, (unsigned char)p[1]);
                p += 2;
                continue;
            }
            break;
        }
        const char *ep = class_end(m, p);
        if (!single_matches(m, s, p, ep)) {
            if (*ep == '*' || *ep == '?' || *ep == '-') {
                p = ep + 1;  // zero repetitions are allowed
                continue;
            }
            s = NULL;
            goto done;
        }
        switch (*ep) {
        case '?': {
            const char *end = match_here(m, s + 1, ep + 1);
            if (end != NULL) {
                s = end;
                goto done;
            }
            p = ep + 1;
            continue;
        }
        case '+': s = expand_greedy(m, s + 1, p, ep); goto done;
        case '*': s = expand_greedy(m, s, p, ep); goto done;
        case '-': s = expand_lazy(m, s, p, ep); goto done;
        default: s++; p = ep; continue;
        }
    }
done:
    m->depth++;
    return s;
}

// MARK: - Captures

void lopper_matcher_push_capture(LopperMatcher *m, int index, const char *s, const char *e) {
    if (index >= m->level) {
        if (index != 0) luaL_error(m->L, "invalid capture index %%%d", index + 1);
        lua_pushlstring(m->L, s, (size_t)(e - s));  // no captures: the whole match
        return;
    }
    ptrdiff_t length = m->capture[index].length;
    if (length == CAP_UNFINISHED) luaL_error(m->L, "unfinished capture");
    if (length == CAP_POSITION) lua_pushinteger(m->L, (m->capture[index].start - m->src) + 1);
    else lua_pushlstring(m->L, m->capture[index].start, (size_t)length);
}

// Pushes the captures (the whole match when there are none and `s` is given).
int lopper_matcher_push_captures(LopperMatcher *m, const char *s, const char *e) {
    int count = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->L, count, "too many captures");
    for (int index = 0; index < count; index++) lopper_matcher_push_capture(m, index, s, e);
    return count;
}

const char *lopper_matcher_match(LopperMatcher *m, const char *s, const char *p) { return match_here(m, s, p); }
