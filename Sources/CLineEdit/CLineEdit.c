#include "CLineEdit.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>
#include <histedit.h>

struct lopper_editor {
    EditLine *el;
    History *history;
    char *history_path;
    char *prompt;
    lopper_completer completer;
    void *context;
    lopper_pending_fn interrupted;
    FILE *out;
};

static char *prompt_of(EditLine *el) {
    lopper_editor *editor = NULL;
    el_get(el, EL_CLIENTDATA, &editor);
    return editor != NULL && editor->prompt != NULL ? editor->prompt : "> ";
}

static int pending(lopper_editor *editor) {
    return editor->interrupted != NULL && editor->interrupted();
}

static int read_byte(lopper_editor *editor, unsigned char *byte) {
    for (;;) {
        if (pending(editor)) { errno = EINTR; return -1; }
        struct pollfd fd = { .fd = STDIN_FILENO, .events = POLLIN };
        int ready = poll(&fd, 1, 100);
        if (ready < 0) {
            if (errno == EINTR) continue;  // the loop checks the interrupt flag
            return -1;
        }
        if (ready == 0) continue;
        ssize_t count = read(STDIN_FILENO, byte, 1);
        if (count == 1) return 1;
        if (count == 0) return 0;
        if (errno != EINTR && errno != EAGAIN) return -1;
    }
}

// Reads one character, decoding UTF-8 by hand (so the editor works in any locale
// that libedit can encode back).
static int read_char(EditLine *el, wchar_t *out) {
    lopper_editor *editor = NULL;
    el_get(el, EL_CLIENTDATA, &editor);
    unsigned char lead;
    int status = read_byte(editor, &lead);
    if (status <= 0) { *out = 0; return status; }
    int extra = lead < 0x80 ? 0 : (lead & 0xE0) == 0xC0 ? 1 : (lead & 0xF0) == 0xE0 ? 2 : (lead & 0xF8) == 0xF0 ? 3 : -1;
    if (extra < 0) { *out = L'?'; return 1; }
    wchar_t value = extra == 0 ? lead : lead & (0x3F >> extra);
    for (int i = 0; i < extra; i++) {
        unsigned char next;
        status = read_byte(editor, &next);
        if (status <= 0) { *out = 0; return status; }
        value = (value << 6) | (next & 0x3F);
    }
    *out = value;
    return 1;
}

static size_t terminal_width(void) {
    struct winsize size;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return 80;
}

static void list_candidates(lopper_editor *editor, char **matches, size_t count) {
    size_t widest = 0;
    for (size_t i = 0; i < count; i++) {
        size_t length = strlen(matches[i]);
        if (length > widest) widest = length;
    }
    size_t limit = count > 200 ? 200 : count;
    size_t column = widest + 2;
    size_t columns = terminal_width() / column;
    if (columns < 1) columns = 1;
    size_t rows = (limit + columns - 1) / columns;
    fputc('\n', editor->out);
    for (size_t row = 0; row < rows; row++) {
        for (size_t col = 0; col < columns; col++) {
            size_t index = col * rows + row;
            if (index >= limit) break;
            int last = col + 1 == columns || (col + 1) * rows + row >= limit;
            if (last) fputs(matches[index], editor->out);
            else fprintf(editor->out, "%-*s", (int)column, matches[index]);
        }
        fputc('\n', editor->out);
    }
    if (limit < count) fprintf(editor->out, "... and %zu more\n", count - limit);
    fflush(editor->out);
}

static unsigned char complete(EditLine *el, int ch) {
    (void)ch;
    lopper_editor *editor = NULL;
    el_get(el, EL_CLIENTDATA, &editor);
    if (editor == NULL || editor->completer == NULL) return CC_ERROR;
    const LineInfo *line = el_line(el);
    size_t length = (size_t)(line->cursor - line->buffer);
    char *text = malloc(length + 1);
    if (text == NULL) return CC_ERROR;
    memcpy(text, line->buffer, length);
    text[length] = 0;
    int start = (int)length;
    char **matches = editor->completer(editor->context, text, &start);
    if (start < 0 || (size_t)start > length) start = (int)length;
    size_t typed = length - (size_t)start;
    unsigned char result = CC_REFRESH_BEEP;
    size_t count = 0;
    while (matches != NULL && matches[count] != NULL) count++;
    if (count > 0) {
        size_t common = strlen(matches[0]);
        for (size_t i = 1; i < count; i++) {
            size_t j = 0;
            while (j < common && matches[i][j] == matches[0][j]) j++;
            common = j;
        }
        // Do not cut a UTF-8 sequence in half.
        while (common > 0 && common < strlen(matches[0]) && (matches[0][common] & 0xC0) == 0x80) common--;
        int same_prefix = common >= typed && strncmp(matches[0], text + start, typed) == 0;
        if (common > typed || (!same_prefix && common > 0)) {
            char *insert = malloc(common + 1);
            if (insert != NULL) {
                if (same_prefix) {
                    memcpy(insert, matches[0] + typed, common - typed);
                    insert[common - typed] = 0;
                } else {
                    el_deletestr(el, (int)typed);
                    memcpy(insert, matches[0], common);
                    insert[common] = 0;
                }
                el_insertstr(el, insert);
                free(insert);
                result = CC_REFRESH;
            }
        } else if (count > 1) {
            list_candidates(editor, matches, count);
            result = CC_REDISPLAY;
        } else {
            result = CC_NORM;
        }
    }
    for (size_t i = 0; i < count; i++) free(matches[i]);
    free(matches);
    free(text);
    return result;
}

lopper_editor *lopper_editor_open(const char *program, const char *history_path,
                                  lopper_completer completer, void *context,
                                  lopper_pending_fn interrupted) {
    // libedit converts between wide characters and the locale's multibyte text.
    if (setlocale(LC_CTYPE, "") == NULL || strcmp(nl_langinfo(CODESET), "UTF-8") != 0) {
        setlocale(LC_CTYPE, "C.UTF-8");
    }
    lopper_editor *editor = calloc(1, sizeof *editor);
    if (editor == NULL) return NULL;
    editor->out = stdout;
    editor->completer = completer;
    editor->context = context;
    editor->interrupted = interrupted;
    editor->el = el_init(program, stdin, stdout, stderr);
    if (editor->el == NULL) { free(editor); return NULL; }
    editor->history = history_init();
    HistEvent event;
    if (editor->history != NULL) {
        history(editor->history, &event, H_SETSIZE, 1000);
        history(editor->history, &event, H_SETUNIQUE, 1);
        if (history_path != NULL && history_path[0] != 0) {
            editor->history_path = strdup(history_path);
            history(editor->history, &event, H_LOAD, history_path);
        }
        el_set(editor->el, EL_HIST, history, editor->history);
    }
    el_set(editor->el, EL_CLIENTDATA, editor);
    el_set(editor->el, EL_EDITOR, "emacs");
    el_set(editor->el, EL_SIGNAL, 0);
    el_set(editor->el, EL_PROMPT, prompt_of);
    el_set(editor->el, EL_GETCFN, read_char);
    el_set(editor->el, EL_ADDFN, "lopper-complete", "Complete a Lua name", complete);
    el_set(editor->el, EL_BIND, "^I", "lopper-complete", NULL);
    el_source(editor->el, NULL);  // the user's ~/.editrc, if any
    return editor;
}

char *lopper_editor_read(lopper_editor *editor, const char *prompt, int *status) {
    free(editor->prompt);
    editor->prompt = strdup(prompt != NULL ? prompt : "> ");
    int count = 0;
    const char *line = el_gets(editor->el, &count);
    if (pending(editor)) {
        *status = LOPPER_EDITOR_INTERRUPTED;
        el_reset(editor->el);
        return NULL;
    }
    if (line == NULL || count <= 0) {
        *status = LOPPER_EDITOR_EOF;
        return NULL;
    }
    size_t length = strlen(line);
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) length--;
    char *copy = malloc(length + 1);
    if (copy == NULL) { *status = LOPPER_EDITOR_EOF; return NULL; }
    memcpy(copy, line, length);
    copy[length] = 0;
    *status = LOPPER_EDITOR_LINE;
    return copy;
}

void lopper_editor_add_history(lopper_editor *editor, const char *entry) {
    if (editor->history == NULL || entry == NULL || entry[0] == 0) return;
    HistEvent event;
    history(editor->history, &event, H_ENTER, entry);
    if (editor->history_path != NULL) history(editor->history, &event, H_SAVE, editor->history_path);
}

void lopper_editor_close(lopper_editor *editor) {
    if (editor == NULL) return;
    if (editor->history != NULL) {
        HistEvent event;
        if (editor->history_path != NULL) history(editor->history, &event, H_SAVE, editor->history_path);
        history_end(editor->history);
    }
    el_end(editor->el);
    free(editor->history_path);
    free(editor->prompt);
    free(editor);
}
