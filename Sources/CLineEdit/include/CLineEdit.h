#ifndef CLINEEDIT_H
#define CLINEEDIT_H
// A line editor for the REPL over libedit's native el_* API: prompt, emacs key
// bindings, persistent history and Tab completion through a callback.
//
// Ctrl-C: the editor reads keys itself (poll + read). When `interrupted()` reports
// a pending interrupt (the SIGINT handler of CLuaShim sets it), the current line is
// dropped and lopper_editor_read returns LOPPER_EDITOR_INTERRUPTED.

#define LOPPER_EDITOR_LINE 0
#define LOPPER_EDITOR_EOF 1
#define LOPPER_EDITOR_INTERRUPTED 2

typedef struct lopper_editor lopper_editor;

/// Completion: `text` is the line up to the cursor. Sets `*start` to the byte offset
/// where the replaced word begins and returns a malloc'd, NULL-terminated array of
/// malloc'd replacements for text[start...] (or NULL for none).
typedef char **(*lopper_completer)(void *context, const char *text, int *start);
typedef int (*lopper_pending_fn)(void);

/// Opens an editor on stdin/stdout. `history_path` may be NULL (no file).
lopper_editor *lopper_editor_open(const char *program, const char *history_path,
                                  lopper_completer completer, void *context,
                                  lopper_pending_fn interrupted);
/// Reads one line (malloc'd, without the newline) or returns NULL with `*status`
/// set to LOPPER_EDITOR_EOF or LOPPER_EDITOR_INTERRUPTED.
char *lopper_editor_read(lopper_editor *editor, const char *prompt, int *status);
/// Adds an entry (may span lines) to the history and saves the history file.
void lopper_editor_add_history(lopper_editor *editor, const char *entry);
void lopper_editor_close(lopper_editor *editor);

#endif
