/*
 * term.c - the terminal of duroxlua's REPL and live commands, as the Lua module durox.term
 * (preloaded by main.c; the loadable module does not have it): line editing with persistent
 * history and tab completion through libedit when standard input is a terminal (plain line
 * reading otherwise, or in a build without libedit), the window size, and single key presses
 * with a timeout (the 'q' of top). Ctrl-C at the prompt discards the line and readline
 * returns false; the completion function is Lua, always called through lua_pcall (a Lua error
 * never unwinds through libedit's frames). Used by lua/durox/repl.lua and durox.cli.top.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli/cli.h"

#ifdef DUROX_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

/* ---- Ctrl-C while reading a line -------------------------------------------------------- */

static volatile sig_atomic_t line_interrupted;

static void on_sigint_at_prompt(int sig)
{
	(void)sig;
	line_interrupted = 1;
}

/* Installs the prompt's SIGINT handler (no SA_RESTART, so a blocked read returns EINTR);
 * the previous one is saved in *old. */
static void prompt_signals(struct sigaction *old)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint_at_prompt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, old);
	line_interrupted = 0;
}

/* ---- reading a line ----------------------------------------------------------------------- */

/* A line from stdin without an editor: pushes it (without the newline), or nothing at EOF.
 * Returns 1 (a line), 0 (EOF) or -1 (interrupted). Lines may be of any length. */
static int plain_line(lua_State *L, const char *prompt)
{
	fputs(prompt, stdout);
	fflush(stdout);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	int got = 0, c;
	while ((c = getchar()) != EOF) {
		got = 1;
		if (c == '\n')
			break;
		luaL_addchar(&b, (char)c);
	}
	if (c == EOF && ferror(stdin) && errno == EINTR && line_interrupted) {
		clearerr(stdin);
		luaL_pushresult(&b);
		lua_pop(L, 1);
		return -1;
	}
	luaL_pushresult(&b);
	if (!got) {
		lua_pop(L, 1);
		return 0;
	}
	return 1;
}

static int editing(void)
{
#ifdef DUROX_HAVE_LIBEDIT
	return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
#else
	return 0;
#endif
}

/* term.readline(prompt) -> line | nil (end of input) | false (Ctrl-C: the line is discarded) */
static int t_readline(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "> ");
	struct sigaction old;
	prompt_signals(&old);
	int r;
#ifdef DUROX_HAVE_LIBEDIT
	if (editing()) {
		errno = 0;
		char *line = readline(prompt);
		if (line != NULL) {
			lua_pushstring(L, line); /* never raises: the string is copied before free */
			free(line);
			r = 1;
		} else {
			r = line_interrupted ? -1 : 0;
		}
	} else
#endif
		r = plain_line(L, prompt);
	sigaction(SIGINT, &old, NULL);
	if (r == 0) {
		lua_pushnil(L);
	} else if (r < 0) {
		fputs("\n", stdout);
		fflush(stdout);
		lua_pushboolean(L, 0);
	}
	return 1;
}

/* ---- history -------------------------------------------------------------------------------- */

static char *history_path; /* where add_history saves; NULL: not saved */

/* term.history(path [, max]) -> true | nil, message: loads the history file (a missing file
 * is an empty history) and saves there from now on; max entries are kept (default 1000). */
static int t_history(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	lua_Integer max = luaL_optinteger(L, 2, 1000);
	luaL_argcheck(L, max > 0 && max <= 1000000, 2, "history size out of range (1 to 1000000)");
	char *copy = strdup(path);
	if (copy == NULL)
		return luaL_error(L, "out of memory");
	free(history_path);
	history_path = copy;
#ifdef DUROX_HAVE_LIBEDIT
	using_history();
	stifle_history((int)max);
	if (access(path, F_OK) == 0 && read_history(path) != 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot read the history file %s", path);
		return 2;
	}
#endif
	lua_pushboolean(L, 1);
	return 1;
}

/* term.add_history(line): remembers a line (and saves the history file, if one is set). */
static int t_add_history(lua_State *L)
{
	const char *line = luaL_checkstring(L, 1);
#ifdef DUROX_HAVE_LIBEDIT
	if (editing() && line[0] != '\0') {
		add_history(line);
		if (history_path != NULL)
			write_history(history_path);
	}
#else
	(void)line;
#endif
	return 0;
}

/* ---- completion ------------------------------------------------------------------------------ */

static lua_State *completion_L;
static int completer_ref = LUA_NOREF;

#ifdef DUROX_HAVE_LIBEDIT
/* The candidates of the current completion (strdup'd), handed out by next_candidate. */
static char **candidates;
static size_t n_candidates, next_index;

static void clear_candidates(void)
{
	for (size_t k = 0; k < n_candidates; k++)
		free(candidates[k]);
	free(candidates);
	candidates = NULL;
	n_candidates = next_index = 0;
}

static char *next_candidate(const char *text, int state)
{
	(void)text;
	if (state == 0)
		next_index = 0;
	if (next_index >= n_candidates)
		return NULL;
	return strdup(candidates[next_index++]); /* libedit frees it */
}

/* Calls the Lua completer (text, line, start) -> { candidates }; runs protected. */
static int call_completer(lua_State *L)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
	lua_insert(L, 1);
	lua_call(L, 3, 1);
	return 1;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1;   /* never fall back to file names */
	rl_completion_append_character = 0; /* a method or an id is followed by what the user types */
	lua_State *L = completion_L;
	if (L == NULL || completer_ref == LUA_NOREF)
		return NULL;
	clear_candidates();
	int top = lua_gettop(L);
	if (!lua_checkstack(L, 8))
		return NULL;
	lua_pushcfunction(L, call_completer);
	lua_pushstring(L, text);
	lua_pushstring(L, rl_line_buffer != NULL ? rl_line_buffer : "");
	lua_pushinteger(L, start);
	if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_istable(L, -1)) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
		candidates = calloc((size_t)n + 1, sizeof *candidates);
		for (lua_Integer k = 1; candidates != NULL && k <= n; k++) {
			lua_rawgeti(L, -1, k);
			const char *s = lua_tostring(L, -1);
			if (s != NULL && (candidates[n_candidates] = strdup(s)) != NULL)
				n_candidates++;
			lua_pop(L, 1);
		}
	}
	lua_settop(L, top);
	if (n_candidates == 0)
		return NULL;
	return rl_completion_matches(text, next_candidate);
}
#endif

/* term.set_completer(fn): fn(text, line, start) returns the candidates for text, the word
 * that ends at the cursor (start: its offset in line). */
static int t_set_completer(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	if (completer_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
	completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	completion_L = L;
#ifdef DUROX_HAVE_LIBEDIT
	rl_attempted_completion_function = complete;
#endif
	return 0;
}

/* ---- window size and keys ---------------------------------------------------------------- */

/* term.size() -> columns, rows of the terminal on stdout, or nil when it is none */
static int t_size(lua_State *L)
{
	struct winsize ws;
	if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return 0;
	lua_pushinteger(L, ws.ws_col);
	lua_pushinteger(L, ws.ws_row);
	return 2;
}

static struct termios saved_termios;
static int keys_on;

static void keys_off(void)
{
	if (keys_on) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
		keys_on = 0;
	}
}

/* term.keys(on) -> whether key mode is on: single key presses without echo (Ctrl-C still
 * interrupts); off restores the terminal, as exiting does. False when stdin is no terminal. */
static int t_keys(lua_State *L)
{
	int on = lua_toboolean(L, 1);
	if (!on) {
		keys_off();
		lua_pushboolean(L, 0);
		return 1;
	}
	if (!keys_on && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
		struct termios t = saved_termios;
		t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
			keys_on = 1;
			static int registered;
			if (!registered && atexit(keys_off) == 0)
				registered = 1;
		}
	}
	lua_pushboolean(L, keys_on);
	return 1;
}

/* term.getkey(timeout_ms) -> the key pressed (one byte) | nil (timeout, or a signal) */
static int t_getkey(lua_State *L)
{
	lua_Integer ms = luaL_checkinteger(L, 1);
	luaL_argcheck(L, ms >= 0 && ms <= 86400000, 1, "timeout out of range (0 to 1 day)");
	struct pollfd p = {STDIN_FILENO, POLLIN, 0};
	if (poll(&p, 1, (int)ms) <= 0 || !(p.revents & POLLIN))
		return 0;
	char c;
	if (read(STDIN_FILENO, &c, 1) != 1)
		return 0;
	lua_pushlstring(L, &c, 1);
	return 1;
}

/* term.editor() -> "libedit" when lines are edited (a terminal, libedit built in), else "plain" */
static int t_editor(lua_State *L)
{
	lua_pushstring(L, editing() ? "libedit" : "plain");
	return 1;
}

static const luaL_Reg term_functions[] = {
        {"readline", t_readline},
        {"history", t_history},
        {"add_history", t_add_history},
        {"set_completer", t_set_completer},
        {"size", t_size},
        {"keys", t_keys},
        {"getkey", t_getkey},
        {"editor", t_editor},
        {NULL, NULL},
};

int cli_open_term(lua_State *L)
{
#ifdef DUROX_HAVE_LIBEDIT
	rl_readline_name = "duroxlua"; /* ~/.editrc may bind keys for duroxlua */
	rl_catch_signals = 0;          /* our SIGINT handler sees Ctrl-C, not libedit's */
	rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(,[";
#endif
	luaL_newlib(L, term_functions);
	return 1;
}
