/*
 * main.c - duroxlua, the Lua 5.4 interpreter with the durox module built in:
 *
 *   duroxlua [--store URL] [--config FILE] [--no-index] [--nice N] [access options]
 *            [-e CODE] [-l [G=]MOD] [-i] [-v] [-E] [-W] [SCRIPT [ARGS]]
 *   duroxlua [--store URL] [--config FILE] COMMAND [ARGS]   (list, show, cancel, ...: lua/durox/cli)
 *
 * The front end reads its own options, then hands over: a COMMAND to durox.cli.main, a
 * SCRIPT (or standard input that is no terminal) to the interpreter, and with no script on a
 * terminal, or with -i, to the REPL (lua/durox/repl.lua, on durox.term from term.c). The
 * whole run is one protected call, so a Lua error anywhere is reported and nothing escapes.
 * Ctrl-C while Lua code runs sets a hook that raises "interrupted!" at the next instruction;
 * at the prompt it only discards the line. Exit codes follow docs/cli.md: 0 done, 1 an error,
 * 2 a bad command line, 130 interrupted (a COMMAND returns its own). Relies on the binding
 * (durox_luaopen) and term.c; the subcommands are the embedded lua/durox/cli modules.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cli/cli.h"
#include "lua/lx.h"

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

static const char *const PROGRAM = "duroxlua";

/* ---- the command line ---------------------------------------------------------------------- */

/* What the front end's options asked for. Actions (-e, -l, -W) are run in their order by
 * walking argv again up to `first`. */
/* The access-control settings (docs/access-control.md): the command line's, else the
 * environment's ($DUROX_POLICY, $DUROX_USER, $DUROX_ROLES, $DUROX_AUDIT_FILE,
 * $DUROX_ACCESS_REASON). */
typedef struct access_opts {
	const char *policy, *user, *audit_file, *reason;
	const char *roles[64];
	int n_roles;
	const char *roles_env; /* $DUROX_ROLES when no --role was given */
	int no_index;          /* --no-index: read the store without the visibility index */
} access_opts;

typedef struct frontend {
	int argc;
	char **argv;
	int first; /* index of the script or command; argc when there is none */
	int interactive, version, help, no_env, has_code, stdin_script;
	const char *store, *config;
	const char *nice; /* --nice N, else $DUROX_NICE: the process's scheduling priority */
	access_opts access;
	const char *bad; /* an option we do not know, or one missing its value */
} frontend;

/* The options that take a value (skipped when the actions are run in order). */
static int takes_value(const char *a)
{
	static const char *const names[] = {"--store",      "--config",        "--policy", "--user", "--role",
	                                    "--audit-file", "--access-reason", "--nice",   NULL};
	for (int k = 0; names[k] != NULL; k++)
		if (strcmp(a, names[k]) == 0)
			return 1;
	return 0;
}

/* Reads the value of option argv[*i] (its own next argument, or after '=' in --name=value). */
static const char *option_value(frontend *f, int *i, const char *name)
{
	const char *a = f->argv[*i];
	size_t n = strlen(name);
	if (a[n] == '=')
		return a + n + 1;
	if (*i + 1 >= f->argc) {
		f->bad = a;
		return NULL;
	}
	return f->argv[++*i];
}

/* Fills f from argv; stops at the first argument that is not an option (the script or
 * command), at "--" or at "-" (the script is standard input). */
static void read_command_line(frontend *f)
{
	for (int i = 1; i < f->argc; i++) {
		const char *a = f->argv[i];
		if (a[0] != '-') {
			f->first = i;
			return;
		}
		if (strcmp(a, "--") == 0) {
			f->first = i + 1;
			return;
		}
		if (strcmp(a, "-") == 0) {
			f->first = i;
			f->stdin_script = 1;
			return;
		}
		if (strcmp(a, "--store") == 0 || strncmp(a, "--store=", 8) == 0) {
			if ((f->store = option_value(f, &i, "--store")) == NULL)
				return;
		} else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) {
			if ((f->config = option_value(f, &i, "--config")) == NULL)
				return;
		} else if (strcmp(a, "--policy") == 0 || strncmp(a, "--policy=", 9) == 0) {
			if ((f->access.policy = option_value(f, &i, "--policy")) == NULL)
				return;
		} else if (strcmp(a, "--user") == 0 || strncmp(a, "--user=", 7) == 0) {
			if ((f->access.user = option_value(f, &i, "--user")) == NULL)
				return;
		} else if (strcmp(a, "--audit-file") == 0 || strncmp(a, "--audit-file=", 13) == 0) {
			if ((f->access.audit_file = option_value(f, &i, "--audit-file")) == NULL)
				return;
		} else if (strcmp(a, "--access-reason") == 0 || strncmp(a, "--access-reason=", 16) == 0) {
			if ((f->access.reason = option_value(f, &i, "--access-reason")) == NULL)
				return;
		} else if (strcmp(a, "--role") == 0 || strncmp(a, "--role=", 7) == 0) {
			const char *r = option_value(f, &i, "--role");
			if (r == NULL)
				return;
			if (f->access.n_roles >= 64) {
				f->bad = a;
				return;
			}
			f->access.roles[f->access.n_roles++] = r;
		} else if (strcmp(a, "--no-index") == 0) {
			f->access.no_index = 1;
		} else if (strcmp(a, "--nice") == 0 || strncmp(a, "--nice=", 7) == 0) {
			if ((f->nice = option_value(f, &i, "--nice")) == NULL)
				return;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			f->help = 1;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
			f->version = 1;
		} else if (strcmp(a, "-i") == 0) {
			f->interactive = f->version = 1;
		} else if (strcmp(a, "-E") == 0) {
			f->no_env = 1;
		} else if (strcmp(a, "-W") == 0) {
			/* run in order with -e and -l */
		} else if (a[1] == 'e' || a[1] == 'l') {
			f->has_code |= a[1] == 'e';
			if (a[2] == '\0' && (i + 1 >= f->argc || f->argv[i + 1][0] == '-')) {
				f->bad = a;
				return;
			}
			if (a[2] == '\0')
				i++;
		} else {
			f->bad = a;
			return;
		}
	}
	f->first = f->argc;
}

/* Prints durox.cli's interpreter_usage() (the one text --help and the manual show). */
static void print_usage(lua_State *L, FILE *out)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.cli");
	if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_getfield(L, -1, "interpreter_usage") == LUA_TFUNCTION &&
	    lua_pcall(L, 0, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
		fputs(lua_tostring(L, -1), out);
	else
		fprintf(out, "usage: %s [options] [script [args]]\n", PROGRAM);
	lua_settop(L, 2);
}

/* Lowers the process's CPU priority to nice level text (0..19), as `nice -n` does from 0:
 * a reader that polls yields the CPU to the runtime on a busy machine (docs/operations.md,
 * "Reads and the live runtime"). A level at or below the current one changes nothing (raising
 * a priority needs privileges). Returns 0, or prints why not and returns EXIT_USAGE / 1. */
static int apply_nice(const char *text)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 19) {
		fprintf(stderr, "%s: --nice takes a level from 0 to 19, not '%s'\n", PROGRAM, text);
		return EXIT_USAGE;
	}
	errno = 0;
	int cur = getpriority(PRIO_PROCESS, 0);
	if (errno == 0 && cur >= (int)v)
		return 0;
	if (setpriority(PRIO_PROCESS, 0, (int)v) != 0) {
		fprintf(stderr, "%s: cannot set nice level %ld: %s\n", PROGRAM, v, strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- running Lua code ------------------------------------------------------------------------ */

static lua_State *running; /* the state whose code a Ctrl-C interrupts */

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

/* SIGINT while Lua code runs: stop it at its next instruction (setting a hook is what a
 * signal handler may do with a Lua state), and stop the store call running, if one is, so a
 * long query ends now rather than when it is done (durox_interrupt_all is signal-safe). */
static void on_sigint(int sig)
{
	(void)sig;
	if (running != NULL)
		lua_sethook(running, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
	durox_interrupt_all();
}

/* Message handler: the error as text, with a traceback below it. */
static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Calls the function below its nargs arguments, protected, with Ctrl-C interrupting it.
 * Leaves nres results (or the error message) and returns the lua_pcall status. */
static int call(lua_State *L, int nargs, int nres)
{
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, traceback);
	lua_insert(L, base);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	lua_State *outer = running;
	running = L;
	int status = lua_pcall(L, nargs, nres, base);
	running = outer;
	sigaction(SIGINT, &old, NULL);
	lua_remove(L, base);
	return status;
}

/* Whether the error at the top is an interruption by Ctrl-C. */
static int interrupted(lua_State *L)
{
	const char *msg = lua_tostring(L, -1);
	return msg != NULL && strstr(msg, "interrupted!") != NULL;
}

/* Reports a failed call's message (at the top, popped) as "duroxlua: message". */
static int report(lua_State *L, int status)
{
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s: %s\n", PROGRAM, msg != NULL ? msg : "(error object is not a string)");
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

/* The exit code of a failed run: interrupted or an error. Pops the message after reporting. */
static int failure(lua_State *L, int status)
{
	int code = interrupted(L) ? EXIT_INTERRUPTED : EXIT_FAILURE;
	report(L, status);
	return code;
}

/* Runs a loaded chunk, below its nargs arguments (or reports why it did not load: then no
 * arguments were pushed); returns 0 or an exit code. */
static int run_loaded(lua_State *L, int load_status, int nargs)
{
	if (load_status != LUA_OK)
		return failure(L, load_status);
	int status = call(L, nargs, 0);
	return status == LUA_OK ? 0 : failure(L, status);
}

/* -l [G=]MOD: require("MOD") into the global G (default MOD). Returns 0 or an exit code. */
static int require_into_global(lua_State *L, const char *spec)
{
	const char *eq = strchr(spec, '=');
	const char *mod = eq != NULL ? eq + 1 : spec;
	lua_pushglobaltable(L);
	lua_pushlstring(L, spec, eq != NULL ? (size_t)(eq - spec) : strlen(spec));
	lua_getglobal(L, "require");
	lua_pushstring(L, mod);
	int status = call(L, 1, 1);
	if (status != LUA_OK) {
		int code = failure(L, status);
		lua_pop(L, 2);
		return code;
	}
	lua_settable(L, -3);
	lua_pop(L, 1);
	return 0;
}

/* Runs the -e, -l and -W actions in their order. Returns 0 or an exit code. */
static int run_actions(lua_State *L, const frontend *f)
{
	for (int i = 1; i < f->first; i++) {
		const char *a = f->argv[i];
		if (takes_value(a)) {
			i++;
			continue;
		}
		if (strcmp(a, "-W") == 0) {
			lua_warning(L, "@on", 0);
			continue;
		}
		if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
			continue;
		const char *value = a[2] != '\0' ? a + 2 : f->argv[++i];
		int code;
		if (a[1] == 'e') {
			code = run_loaded(L, luaL_loadbuffer(L, value, strlen(value), "=(command line)"), 0);
		} else {
			code = require_into_global(L, value);
		}
		if (code != 0)
			return code;
	}
	return 0;
}

/* LUA_INIT_5_4 (else LUA_INIT): "@file" runs the file, anything else is code. */
static int run_lua_init(lua_State *L)
{
	const char *name = "=LUA_INIT_5_4";
	const char *init = getenv("LUA_INIT_5_4");
	if (init == NULL) {
		name = "=LUA_INIT";
		init = getenv("LUA_INIT");
	}
	if (init == NULL)
		return 0;
	if (init[0] == '@')
		return run_loaded(L, luaL_loadfile(L, init + 1), 0);
	return run_loaded(L, luaL_loadbuffer(L, init, strlen(init), name), 0);
}

/* The global table arg: the script at 0, its arguments at 1.., the options below 0. */
static void set_arg_table(lua_State *L, const frontend *f)
{
	int script = f->first < f->argc ? f->first : 0;
	lua_createtable(L, f->argc - script, script + 1);
	for (int i = 0; i < f->argc; i++) {
		lua_pushstring(L, f->argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

/* Runs the script argv[first] (NULL name: stdin) with its arguments. */
static int run_script(lua_State *L, const frontend *f)
{
	const char *name = f->stdin_script ? NULL : f->argv[f->first];
	int load = luaL_loadfile(L, name);
	int nargs = 0;
	if (load == LUA_OK) {
		nargs = f->argc - f->first - 1;
		luaL_checkstack(L, nargs + 3, "too many arguments to the script");
		for (int i = f->first + 1; i < f->argc; i++)
			lua_pushstring(L, f->argv[i]);
	}
	return run_loaded(L, load, nargs);
}

/* ---- commands, the store, the REPL ------------------------------------------------------------ */

/* Whether argv[first] names a command: a plain word (no '.', no '/') that is not a file. */
static int names_command(const frontend *f)
{
	if (f->first >= f->argc || f->stdin_script || strcmp(f->argv[f->first - 1], "--") == 0)
		return 0;
	const char *w = f->argv[f->first];
	return w[0] != '\0' && strchr(w, '.') == NULL && strchr(w, '/') == NULL && access(w, F_OK) != 0;
}

/* Pushes the access settings as durox.cli takes them: { policy, user, roles = {...},
 * audit_file, reason, source_ip } (source_ip: the client of an SSH session, $SSH_CLIENT). */
static void push_access(lua_State *L, const frontend *f)
{
	const access_opts *a = &f->access;
	lua_createtable(L, 0, 6);
	const char *fields[][2] = {
	        {"policy", a->policy}, {"user", a->user}, {"audit_file", a->audit_file}, {"reason", a->reason}};
	for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
		if (fields[k][1] != NULL) {
			lua_pushstring(L, fields[k][1]);
			lua_setfield(L, -2, fields[k][0]);
		}
	}
	lua_createtable(L, a->n_roles, 0);
	for (int k = 0; k < a->n_roles; k++) {
		lua_pushstring(L, a->roles[k]);
		lua_rawseti(L, -2, k + 1);
	}
	if (a->n_roles == 0 && a->roles_env != NULL) {
		lua_pushstring(L, a->roles_env); /* "a,b": durox.cli splits it */
		lua_rawseti(L, -2, 1);
	}
	lua_setfield(L, -2, "roles");
	if (a->no_index) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "no_index");
	}
	const char *ssh = f->no_env ? NULL : getenv("SSH_CLIENT");
	if (ssh != NULL && ssh[0] != '\0') {
		const char *sp = strchr(ssh, ' ');
		lua_pushlstring(L, ssh, sp != NULL ? (size_t)(sp - ssh) : strlen(ssh));
		lua_setfield(L, -2, "source_ip");
	}
}

/* durox.cli.main({command, args...}, store, config, access) -> its exit code. */
static int run_command(lua_State *L, const frontend *f)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.cli");
	int status = call(L, 1, 1);
	if (status != LUA_OK)
		return failure(L, status);
	lua_getfield(L, -1, "main");
	lua_createtable(L, f->argc - f->first, 0);
	for (int i = f->first; i < f->argc; i++) {
		lua_pushstring(L, f->argv[i]);
		lua_rawseti(L, -2, i - f->first + 1);
	}
	f->store != NULL ? (void)lua_pushstring(L, f->store) : lua_pushnil(L);
	f->config != NULL ? (void)lua_pushstring(L, f->config) : lua_pushnil(L);
	push_access(L, f);
	status = call(L, 4, 1);
	if (status != LUA_OK)
		return failure(L, status);
	return lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
}

/* Opens the store as the global dx, with the options the commands use (durox.cli's
 * open_options: the configuration file and access control; a script may write). Returns 0
 * or an exit code. */
static int open_store(lua_State *L, const frontend *f)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.cli");
	int status = call(L, 1, 1);
	if (status != LUA_OK)
		return failure(L, status);
	lua_getfield(L, -1, "open_options");
	lua_remove(L, -2);
	lua_pushboolean(L, 1);
	f->config != NULL ? (void)lua_pushstring(L, f->config) : lua_pushnil(L);
	push_access(L, f);
	if ((status = call(L, 3, 1)) != LUA_OK)
		return failure(L, status);
	lua_getglobal(L, "durox");
	lua_getfield(L, -1, "open");
	lua_remove(L, -2);
	lua_pushstring(L, f->store);
	lua_pushvalue(L, -3); /* the options */
	lua_remove(L, -4);
	if ((status = call(L, 2, 2)) != LUA_OK)
		return failure(L, status);
	if (lua_isnil(L, -2)) {
		fprintf(stderr, "%s: %s\n", PROGRAM, lua_tostring(L, -1));
		lua_pop(L, 2);
		return EXIT_FAILURE;
	}
	lua_pop(L, 1);
	lua_setglobal(L, "dx");
	return 0;
}

/* The REPL: durox.repl.run, started again after a Ctrl-C that reached its own code. */
static int run_repl(lua_State *L, int banner)
{
	for (;;) {
		lua_getglobal(L, "require");
		lua_pushliteral(L, "durox.repl");
		int status = call(L, 1, 1);
		if (status != LUA_OK)
			return failure(L, status);
		lua_getfield(L, -1, "run");
		lua_remove(L, -2);
		lua_createtable(L, 0, 2);
		lua_pushboolean(L, banner);
		lua_setfield(L, -2, "banner");
		lua_pushfstring(L, "%s %s (%s)", PROGRAM, DUROX_VERSION, LUA_RELEASE);
		lua_setfield(L, -2, "version");
		status = call(L, 1, 0);
		if (status == LUA_OK)
			return 0;
		if (!interrupted(L))
			return failure(L, status);
		lua_pop(L, 1);
		fputs("\ninterrupted\n", stdout);
		banner = 0;
	}
}

/* Everything, protected: argument 1 is the frontend, argument 2 the exit code's address. */
static int frontend_main(lua_State *L)
{
	frontend *f = lua_touserdata(L, 1);
	int *exit_code = lua_touserdata(L, 2);
	luaL_checkversion(L);
	read_command_line(f);
	if (f->no_env) {
		lua_pushboolean(L, 1);
		lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV"); /* luaL_openlibs: no LUA_PATH */
	}
	luaL_openlibs(L);
	luaL_requiref(L, "durox", durox_luaopen, 1);
	lua_pop(L, 1);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, cli_open_term);
	lua_setfield(L, -2, "durox.term");
	lua_pop(L, 1);
	if (f->bad != NULL) {
		fprintf(stderr, "%s: unknown option or missing value: '%s'\n", PROGRAM, f->bad);
		print_usage(L, stderr);
		*exit_code = EXIT_USAGE;
		return 0;
	}
	if (f->help) {
		print_usage(L, stdout);
		return 0;
	}
	/* the option's value always counts; an empty $DUROX_NICE is no setting, as for the others */
	int nice_given = f->nice != NULL;
	if (!nice_given && !f->no_env)
		f->nice = getenv("DUROX_NICE");
	if (f->nice != NULL && (nice_given || f->nice[0] != '\0') && (*exit_code = apply_nice(f->nice)) != 0)
		return 0;
	if (f->store == NULL && !f->no_env)
		f->store = getenv("DUROX_STORE");
	if (f->store != NULL && f->store[0] == '\0')
		f->store = NULL;
	if (f->config == NULL && !f->no_env)
		f->config = getenv("DUROX_CONFIG");
	if (f->config != NULL && f->config[0] == '\0')
		f->config = NULL;
	access_opts *acc = &f->access;
	if (!f->no_env) {
		if (acc->policy == NULL)
			acc->policy = getenv("DUROX_POLICY");
		if (acc->user == NULL)
			acc->user = getenv("DUROX_USER");
		if (acc->audit_file == NULL)
			acc->audit_file = getenv("DUROX_AUDIT_FILE");
		if (acc->reason == NULL)
			acc->reason = getenv("DUROX_ACCESS_REASON");
		acc->roles_env = getenv("DUROX_ROLES");
	}
	if (acc->policy != NULL && acc->policy[0] == '\0')
		acc->policy = NULL;
	set_arg_table(L, f);
	lua_gc(L, LUA_GCRESTART);
	lua_gc(L, LUA_GCGEN, 0, 0);

	if (!f->has_code && names_command(f)) { /* the command takes every argument after it */
		*exit_code = run_command(L, f);
		return 0;
	}
	if (f->version)
		printf("%s %s (%s)\n", PROGRAM, DUROX_VERSION, LUA_RELEASE);
	int code = f->no_env ? 0 : run_lua_init(L);
	if (code == 0 && f->store != NULL)
		code = open_store(L, f);
	if (code == 0)
		code = run_actions(L, f);
	if (code == 0 && f->first < f->argc)
		code = run_script(L, f);
	if (code != 0) {
		*exit_code = code;
		return 0;
	}
	if (f->interactive) {
		*exit_code = run_repl(L, 0);
	} else if (f->first >= f->argc && !f->has_code && !f->version) {
		if (isatty(STDIN_FILENO))
			*exit_code = run_repl(L, 1);
		else /* standard input is a script */
			*exit_code = run_loaded(L, luaL_loadfile(L, NULL), 0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "%s: not enough memory for a Lua state\n", PROGRAM);
		return EXIT_FAILURE;
	}
	lua_gc(L, LUA_GCSTOP); /* until the libraries are open */
	frontend f = {.argc = argc, .argv = argv, .first = argc};
	int exit_code = 0;
	lua_pushcfunction(L, frontend_main);
	lua_pushlightuserdata(L, &f);
	lua_pushlightuserdata(L, &exit_code);
	int status = lua_pcall(L, 2, 0, 0);
	if (status != LUA_OK)
		exit_code = failure(L, status);
	lua_close(L);
	fflush(stdout);
	return exit_code;
}
