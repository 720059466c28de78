#define _GNU_SOURCE
#include "CTempPaths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

enum { slot_count = 64, path_bytes = 4096 };
enum { slot_free = 0, slot_filling = 1, slot_active = 2, slot_committing = 3 };

static char paths[slot_count][path_bytes];
static atomic_int states[slot_count];
static atomic_int active_count = 0;
static atomic_int signals_during_write = 0;
static atomic_int cancel_signal = 0;
static atomic_int cancelled_once = 0;   // a write was cancelled by a signal, not yet reported
static atomic_int exit_after_commit = 0;
static atomic_int installed = 0;
static void (*_Atomic forward_hook)(void) = NULL;
static struct sigaction previous[NSIG];
static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void say(const char *text) { (void)!write(2, text, strlen(text)); }

// Removes a file, or a flat folder and its files, with async-signal-safe calls only.
static void remove_path(const char *path) {
    if (unlink(path) == 0 || errno == ENOENT) return;
    for (int attempt = 0; attempt < 8; attempt++) {
        int folder = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (folder < 0) return;
        char buffer[8192];
        long count;
        while ((count = syscall(SYS_getdents64, folder, buffer, sizeof buffer)) > 0) {
            for (long offset = 0; offset < count;) {
                struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
                const char *name = entry->d_name;
                if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))) unlinkat(folder, name, 0);
                offset += entry->d_reclen;
            }
        }
        close(folder);
        if (rmdir(path) == 0 || errno == ENOENT) return;
    }
}

static void remove_all_and_exit(int signal_number) {
    int committing = 0;
    for (int slot = 0; slot < slot_count; slot++) {
        int state = atomic_load(&states[slot]);
        if (state == slot_active) remove_path(paths[slot]);
        if (state == slot_committing) committing = 1;
    }
    if (committing) {
        // The output is being renamed into place: it will be complete; exit right after.
        atomic_store(&exit_after_commit, signal_number);
        return;
    }
    say("lopper: error: interrupted; removed the partial output\n");
    _exit(1);
}

static void on_alarm(int signal_number) {
    (void)signal_number;
    if (atomic_load(&active_count) > 0) remove_all_and_exit(atomic_load(&cancel_signal));
}

static void on_signal(int signal_number) {
    if (atomic_load(&active_count) == 0) {
        struct sigaction *old = &previous[signal_number];
        if (old->sa_handler == SIG_IGN) return;
        // A write was cancelled by an earlier signal and Lopper is on its way out with
        // status 1 (its temporaries already gone), the cancellation not yet reported: a
        // second signal in that window ends it the same way, not by the default action or
        // the previous handler (a status of 128 + n: the Lua handler's second Ctrl-C).
        if (atomic_load(&cancelled_once)) {
            say("lopper: error: interrupted\n");
            _exit(1);
        }
        if (old->sa_handler != SIG_DFL && old->sa_handler != NULL) {
            if (old->sa_flags & SA_SIGINFO) old->sa_sigaction(signal_number, NULL, NULL);
            else old->sa_handler(signal_number);
            return;
        }
        signal(signal_number, SIG_DFL);
        raise(signal_number);
        return;
    }
    if (atomic_fetch_add(&signals_during_write, 1) == 0) {
        atomic_store(&cancel_signal, signal_number);
        atomic_store(&cancelled_once, 1);
        void (*hook)(void) = atomic_load(&forward_hook);
        if (hook) hook();
        alarm(3);
        return;
    }
    remove_all_and_exit(signal_number);
}

// Puts our handler in front of whatever is there (idempotent): other code, such as the
// Lua runtime's SIGINT handler, may have installed its own since the last write.
static void install(void) {
    if (!atomic_exchange(&installed, 1)) {
        struct sigaction alarm_action;
        memset(&alarm_action, 0, sizeof alarm_action);
        alarm_action.sa_handler = on_alarm;
        sigemptyset(&alarm_action.sa_mask);
        sigaction(SIGALRM, &alarm_action, NULL);
    }
    for (size_t index = 0; index < sizeof handled / sizeof handled[0]; index++) {
        struct sigaction current;
        sigaction(handled[index], NULL, &current);
        if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == on_signal) continue;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_signal;
        sigemptyset(&action.sa_mask);
        for (size_t other = 0; other < sizeof handled / sizeof handled[0]; other++) sigaddset(&action.sa_mask, handled[other]);
        sigaction(handled[index], &action, &previous[handled[index]]);
    }
}

int lopper_temp_register(const char *path) {
    install();
    if (strlen(path) >= path_bytes) return -1;
    for (int slot = 0; slot < slot_count; slot++) {
        int expected = slot_free;
        if (atomic_compare_exchange_strong(&states[slot], &expected, slot_filling)) {
            strcpy(paths[slot], path);
            atomic_fetch_add(&active_count, 1);
            atomic_store(&states[slot], slot_active);
            return slot;
        }
    }
    return -1;
}

void lopper_temp_unregister(int slot) {
    if (slot < 0 || slot >= slot_count) return;
    if (atomic_exchange(&states[slot], slot_free) == slot_free) return;
    if (atomic_fetch_sub(&active_count, 1) == 1) {
        // The last write ended (finished or abandoned): the next signal starts afresh.
        alarm(0);
        atomic_store(&signals_during_write, 0);
        atomic_store(&cancel_signal, 0);
    }
}

void lopper_temp_commit_begin(int slot) {
    if (slot >= 0 && slot < slot_count) atomic_store(&states[slot], slot_committing);
}

void lopper_temp_commit_end(int slot) {
    if (slot < 0 || slot >= slot_count) return;
    atomic_store(&states[slot], slot_active);
    int pending = atomic_load(&exit_after_commit);
    if (pending) remove_all_and_exit(pending);
}

int lopper_temp_cancel_signal(void) { return atomic_load(&cancel_signal); }

void lopper_temp_cancel_reported(void) { atomic_store(&cancelled_once, 0); }

void lopper_temp_set_forward(void (*hook)(void)) { atomic_store(&forward_hook, hook); }

int lopper_rename_exchange(const char *from, const char *to) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 2 /* RENAME_EXCHANGE (1 would be RENAME_NOREPLACE) */);
#else
    errno = ENOSYS;
    return -1;
#endif
}

void lopper_start_writeback(int descriptor, long long offset, long long length) {
#if defined(__linux__)
    (void)sync_file_range(descriptor, offset, length, SYNC_FILE_RANGE_WRITE);
#else
    (void)descriptor; (void)offset; (void)length;
#endif
}

int lopper_set_direct(int descriptor, int on) {
#if defined(__linux__) && defined(O_DIRECT)
    int flags = fcntl(descriptor, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(descriptor, F_SETFL, on ? (flags | O_DIRECT) : (flags & ~O_DIRECT));
#else
    (void)descriptor; (void)on;
    errno = EINVAL;
    return -1;
#endif
}
