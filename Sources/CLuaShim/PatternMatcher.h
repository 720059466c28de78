#ifndef CLUASHIM_PATTERN_MATCHER_H
#define CLUASHIM_PATTERN_MATCHER_H
// Lua 5.4's pattern matcher (manual section 6.4.1) with a step count: every
// STEP_INTERVAL steps it checks the interrupt flag and the limits of the running
// call, as the count hook does between VM instructions. Used by PatternFunctions.c.
#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>

#define MAX_CAPTURES 32
#define STEP_INTERVAL (1u << 16)

typedef struct LopperMatcher {
    const char *src, *src_end, *pat_end;
    lua_State *L;
    int depth;
    unsigned steps;
    int level;
    struct { const char *start; ptrdiff_t length; } capture[MAX_CAPTURES];
} LopperMatcher;

void lopper_matcher_init(LopperMatcher *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp);
/// Before each match attempt: no captures, full recursion budget.
void lopper_matcher_reset(LopperMatcher *m);
/// Counts `steps` of work; raises the limit error when the call is doomed.
void lopper_matcher_charge(LopperMatcher *m, unsigned steps);
/// The end of a match of pattern `p` at `s`, or NULL.
const char *lopper_matcher_match(LopperMatcher *m, const char *s, const char *p);
/// Pushes capture `index` (the whole match s..e when there are no captures).
void lopper_matcher_push_capture(LopperMatcher *m, int index, const char *s, const char *e);
/// Pushes all captures (the whole match when there are none and `s` is given).
int lopper_matcher_push_captures(LopperMatcher *m, const char *s, const char *e);

#endif
