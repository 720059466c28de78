// Lua 5.4 headers, found through pkg-config lua5.4 (Debian: liblua5.4-dev).
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
