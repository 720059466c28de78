// libedit (BSD editline), found through pkg-config libedit (Debian: libedit-dev).
// Only the REPL uses it, through the small C layer in CLineEdit.
#include <stdio.h>
#include <histedit.h>
