#ifndef CTEMPPATHS_H
#define CTEMPPATHS_H

// Temporary outputs that must not outlive the process. Writers register the hidden
// temporary file or folder they build an output under; SIGINT, SIGTERM, SIGHUP and
// SIGQUIT then clean up:
//   * while nothing is registered, a signal does what it did before (the previous
//     handler runs, or the default action);
//   * the first signal during a write sets the cancel flag (writers check it and stop
//     with an error, which removes their temporaries) and calls the forward hook (the
//     Lua interrupt flag); if the process is still writing 3 seconds later, or on a
//     second signal, the handler removes every registered path itself and exits with
//     status 1.
// Removal in the handler uses only async-signal-safe calls; a registered folder must
// be flat (files only), as the writers' temporary folders are.

/// Registers `path`; returns a slot for the other calls, or -1 when the table is full.
int lopper_temp_register(const char *path);
/// Forgets a slot (after the path was renamed into place or removed).
void lopper_temp_unregister(int slot);
/// Marks a slot as being renamed into place: the handler leaves it alone until
/// `lopper_temp_commit_end`, which exits at once if a forced exit came meanwhile.
void lopper_temp_commit_begin(int slot);
void lopper_temp_commit_end(int slot);
/// 0, or the signal that asked the current write to stop.
int lopper_temp_cancel_signal(void);
/// The cancelled write was reported and the process goes on (a REPL, a script's caller):
/// later signals behave as outside a write again. Until then, a signal after the
/// cancelled write's temporaries are gone exits with status 1.
void lopper_temp_cancel_reported(void);
/// A function the handler calls on the first signal during a write (async-signal-safe).
void lopper_temp_set_forward(void (*hook)(void));
/// Atomically swaps two existing paths (Linux renameat2 RENAME_EXCHANGE); -1 with errno on failure.
int lopper_rename_exchange(const char *from, const char *to);
/// Starts writeback of a written file range without waiting for it (Linux
/// sync_file_range SYNC_FILE_RANGE_WRITE; a no-op elsewhere).
void lopper_start_writeback(int descriptor, long long offset, long long length);
/// Sets (`on` != 0) or clears O_DIRECT on an open file: writes then go from the caller's
/// (block-aligned) buffer to the disk without a copy into the page cache. 0, or -1 with
/// errno (EINVAL where the file system does not support it; always -1 off Linux).
int lopper_set_direct(int descriptor, int on);

#endif
