#ifndef CLUASHIM_INTERNAL_H
#define CLUASHIM_INTERNAL_H
// Shared by the C files of the shim only: these raise, so Swift must never call them.
#include <lua.h>

enum { LOPPER_DOOM_NONE, LOPPER_DOOM_INTERRUPT, LOPPER_DOOM_INSTRUCTIONS, LOPPER_DOOM_TIME };

/// Why the running call must stop (interrupt, instruction or time limit), or NONE.
/// Sticky: once a call is doomed it stays doomed until its budget is restarted.
int lopper_doom_reason(lua_State *L);
/// Raises the limit error (located at the plugin's line) when the call is doomed.
void lopper_raise_if_doomed(lua_State *L);

#endif
