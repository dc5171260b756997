/*
 * main.c - duroxlua: a Lua 5.4 interpreter with the durox module preloaded, a REPL that
 * pretty-prints results, and ready-made subcommands written in Lua (lua/durox/cli).
 *
 *   duroxlua [--store URL] [--config FILE] [options] [script [args]]      like `lua`
 *   duroxlua [--store URL] <subcommand> [args]            e.g. list, show, history
 *
 * Like lua.c it runs everything inside a protected pmain with a traceback handler and
 * turns Ctrl-C into a hook that raises "interrupted!". The store URL comes from --store or
 * DUROX_STORE; when given, the global `dx` is an open handle. Relies on the Lua binding
 * (durox_luaopen). The subcommands live in lua/ and are embedded at build time.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua/lx.h"

static const char *progname = "duroxlua";
static lua_State *globalL = NULL;

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: %s [--store URL] [options] [script [args]]\n"
	        "       %s [--store URL] <command> [args]   (commands: run '%s help')\n"
	        "Options:\n"
	        "  --store URL  open this Duroxide store as the global 'dx' (default: $DUROX_STORE)\n"
	        "  --config FILE  ManagementConfig file for the store (default: $DUROX_CONFIG)\n"
	        "  --no-index   read the store without the visibility index (docs/index.md)\n"
	        "  --policy FILE  access-control policy (default: $DUROX_POLICY; docs/access-control.md)\n"
	        "  --user NAME    the caller's user id for the policy (default: $DUROX_USER)\n"
	        "  --role R1,R2   the caller's roles, repeatable (default: $DUROX_ROLES)\n"
	        "  --audit-file FILE  JSON Lines audit log of a read-only handle (default: $DUROX_AUDIT_FILE)\n"
	        "  --access-reason TEXT  why the caller acts (break-glass policies; default: $DUROX_ACCESS_REASON)\n"
	        "  -e stat      execute string 'stat'\n"
	        "  -i           enter interactive mode after executing 'script'\n"
	        "  -l mod       require library 'mod' into global 'mod'\n"
	        "  -l g=mod     require library 'mod' into global 'g'\n"
	        "  -v           show version information\n"
	        "  -E           ignore environment variables\n"
	        "  -W           turn warnings on\n"
	        "  --           stop handling options\n"
	        "  -            stop handling options and execute stdin\n"
	        "  -h, --help   show this help\n",
	        progname, progname, progname);
}

static void l_message(const char *pname, const char *msg)
{
	if (pname)
		fprintf(stderr, "%s: ", pname);
	fprintf(stderr, "%s\n", msg);
	fflush(stderr);
}

static int report(lua_State *L, int status)
{
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		if (msg == NULL)
			msg = "(error object is not a string)";
		l_message(progname, msg);
		lua_pop(L, 1);
	}
	return status;
}

static void lstop(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

static void laction(int i)
{
	int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
	signal(i, SIG_DFL);
	lua_sethook(globalL, lstop, flag, 1);
}

static int msghandler(lua_State *L)
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

static int docall(lua_State *L, int narg, int nres)
{
	int base = lua_gettop(L) - narg;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	globalL = L;
	signal(SIGINT, laction);
	int status = lua_pcall(L, narg, nres, base);
	signal(SIGINT, SIG_DFL);
	lua_remove(L, base);
	return status;
}

static int dochunk(lua_State *L, int status)
{
	if (status == LUA_OK)
		status = docall(L, 0, 0);
	return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name)
{
	return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, char *arg)
{
	char *eq = strchr(arg, '=');
	const char *mod = arg, *glb = arg;
	if (eq != NULL) {
		*eq = '\0';
		mod = eq + 1;
	}
	lua_getglobal(L, "require");
	lua_pushstring(L, mod);
	int status = docall(L, 1, 1);
	if (status == LUA_OK)
		lua_setglobal(L, glb);
	return report(L, status);
}

/* Creates the global 'arg' table like lua.c: script at 0, its arguments at 1.. */
static void createargtable(lua_State *L, char **argv, int argc, int script)
{
	if (script == argc)
		script = 0;
	int narg = argc - (script + 1);
	lua_createtable(L, narg, script + 1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

static int pushargs(lua_State *L)
{
	if (lua_getglobal(L, "arg") != LUA_TTABLE)
		luaL_error(L, "'arg' is not a table");
	int n = (int)luaL_len(L, -1);
	luaL_checkstack(L, n + 3, "too many arguments to script");
	int i;
	for (i = 1; i <= n; i++)
		lua_rawgeti(L, -i, i);
	lua_remove(L, -i);
	return n;
}

static int handle_script(lua_State *L, char **argv)
{
	const char *fname = argv[0];
	if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
		fname = NULL; /* stdin */
	int status = luaL_loadfile(L, fname);
	if (status == LUA_OK) {
		int n = pushargs(L);
		status = docall(L, n, 0);
	}
	return report(L, status);
}

/* ---- REPL -------------------------------------------------------------------------- */

static const char *get_prompt(lua_State *L, int firstline)
{
	if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
		return firstline ? "durox> " : "   >> ";
	const char *p = luaL_tolstring(L, -1, NULL);
	lua_remove(L, -2);
	return p;
}

static int incomplete(lua_State *L, int status)
{
	if (status == LUA_ERRSYNTAX) {
		size_t lmsg;
		const char *msg = lua_tolstring(L, -1, &lmsg);
		const char eof[] = "<eof>";
		if (lmsg >= sizeof eof - 1 && strcmp(msg + lmsg - (sizeof eof - 1), eof) == 0) {
			lua_pop(L, 1);
			return 1;
		}
	}
	return 0;
}

static int pushline(lua_State *L, int firstline)
{
	char buffer[4096];
	const char *prmt = get_prompt(L, firstline);
	fputs(prmt, stdout);
	fflush(stdout);
	lua_pop(L, 1); /* prompt */
	/* a line may be longer than the buffer: read it in pieces */
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	int got = 0;
	while (fgets(buffer, sizeof buffer, stdin) != NULL) {
		got = 1;
		size_t l = strlen(buffer);
		luaL_addlstring(&b, buffer, l);
		if (l > 0 && buffer[l - 1] == '\n')
			break;
	}
	luaL_pushresult(&b);
	if (!got) {
		lua_pop(L, 1);
		return 0;
	}
	size_t l;
	const char *s = lua_tolstring(L, -1, &l);
	if (l > 0 && s[l - 1] == '\n') {
		lua_pushlstring(L, s, l - 1);
		lua_remove(L, -2);
	}
	if (firstline && lua_tostring(L, -1)[0] == '=') {
		lua_pushfstring(L, "return %s", lua_tostring(L, -1) + 1);
		lua_remove(L, -2);
	}
	return 1;
}

static int addreturn(lua_State *L)
{
	const char *line = lua_tostring(L, -1);
	const char *retline = lua_pushfstring(L, "return %s;", line);
	int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
	if (status == LUA_OK)
		lua_remove(L, -2);
	else
		lua_pop(L, 2);
	return status;
}

static int multiline(lua_State *L)
{
	for (;;) {
		size_t len;
		const char *line = lua_tolstring(L, 1, &len);
		int status = luaL_loadbuffer(L, line, len, "=stdin");
		if (!incomplete(L, status) || !pushline(L, 0))
			return status;
		lua_pushliteral(L, "\n");
		lua_insert(L, -2);
		lua_concat(L, 3);
	}
}

static int loadline(lua_State *L)
{
	lua_settop(L, 0);
	if (!pushline(L, 1))
		return -1;
	int status = addreturn(L);
	if (status != LUA_OK)
		status = multiline(L);
	lua_remove(L, 1);
	return status;
}

/* Prints results with durox.pretty (tables as readable trees). */
static void l_print(lua_State *L)
{
	int n = lua_gettop(L);
	if (n == 0)
		return;
	luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.pretty");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		l_message(progname, lua_tostring(L, -1));
		lua_settop(L, 0);
		return;
	}
	lua_getfield(L, -1, "print");
	lua_remove(L, -2);
	lua_insert(L, 1);
	if (lua_pcall(L, n, 0, 0) != LUA_OK)
		l_message(progname, lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

static void doREPL(lua_State *L)
{
	const char *oldprogname = progname;
	progname = NULL;
	int status;
	while ((status = loadline(L)) != -1) {
		if (status == LUA_OK)
			status = docall(L, 0, LUA_MULTRET);
		if (status == LUA_OK)
			l_print(L);
		else
			report(L, status);
	}
	lua_settop(L, 0);
	fputs("\n", stdout);
	fflush(stdout);
	progname = oldprogname;
}

/* ---- subcommands ----------------------------------------------------------------- */

/* Nonzero when name is meant as a subcommand: a plain word (no '.', no '/') that is not an
 * existing file. durox.cli.main then runs it or reports an unknown command. */
static int is_subcommand(const char *name)
{
	if (name[0] == '-' || name[0] == '\0' || strchr(name, '.') != NULL || strchr(name, '/') != NULL)
		return 0;
	return access(name, F_OK) != 0;
}

/* Runs durox.cli.main with the command name and its arguments; returns the exit code. */
/* The access-control settings of the command line and the environment. */
typedef struct access_opts {
	const char *policy, *user, *audit_file, *reason;
	const char *roles[64];
	int n_roles;
	const char *roles_env; /* $DUROX_ROLES when no --role was given */
	int no_index;          /* --no-index: read the store without the visibility index */
} access_opts;

/* Pushes a table { policy, user, roles = {...}, audit_file, reason, source_ip, no_index } (nil
 * fields when not given); source_ip is the client of an SSH session ($SSH_CLIENT), when there
 * is one. */
static void push_access(lua_State *L, const access_opts *a, int ignore_env)
{
	lua_createtable(L, 0, 7);
	if (a->no_index) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "no_index");
	}
	if (a->policy != NULL) {
		lua_pushstring(L, a->policy);
		lua_setfield(L, -2, "policy");
	}
	if (a->user != NULL) {
		lua_pushstring(L, a->user);
		lua_setfield(L, -2, "user");
	}
	if (a->audit_file != NULL) {
		lua_pushstring(L, a->audit_file);
		lua_setfield(L, -2, "audit_file");
	}
	if (a->reason != NULL) {
		lua_pushstring(L, a->reason);
		lua_setfield(L, -2, "reason");
	}
	lua_newtable(L);
	int n = 0;
	for (int k = 0; k < a->n_roles; k++) {
		lua_pushstring(L, a->roles[k]);
		lua_rawseti(L, -2, ++n);
	}
	if (a->n_roles == 0 && a->roles_env != NULL) {
		lua_pushstring(L, a->roles_env);
		lua_rawseti(L, -2, ++n);
	}
	lua_setfield(L, -2, "roles");
	const char *ssh = ignore_env ? NULL : getenv("SSH_CLIENT");
	if (ssh != NULL && ssh[0] != '\0') {
		const char *sp = strchr(ssh, ' ');
		lua_pushlstring(L, ssh, sp != NULL ? (size_t)(sp - ssh) : strlen(ssh));
		lua_setfield(L, -2, "source_ip");
	}
}

static int run_subcommand(lua_State *L, char **argv, int argc, const char *store_url, const char *config_file,
                          const access_opts *acc, int ignore_env)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.cli");
	int status = docall(L, 1, 1);
	if (status != LUA_OK) {
		report(L, status);
		return 1;
	}
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc, 0);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
	if (store_url != NULL)
		lua_pushstring(L, store_url);
	else
		lua_pushnil(L);
	if (config_file != NULL)
		lua_pushstring(L, config_file);
	else
		lua_pushnil(L);
	push_access(L, acc, ignore_env);
	status = docall(L, 4, 1);
	if (status != LUA_OK) {
		report(L, status);
		return 1;
	}
	return lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
}

/* ---- main ------------------------------------------------------------------------- */

typedef struct opts {
	int argc;
	char **argv;
	int script; /* index of the script or subcommand, or argc */
	int interactive;
	int version;
	int has_e;
	int ignore_env;
	int warnings;
	const char *store;
	const char *config;
	access_opts access;
	int help;
	int bad; /* index of a bad option */
} opts;

static void parse_args(opts *o)
{
	char **argv = o->argv;
	int i;
	for (i = 1; i < o->argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-') {
			o->script = i;
			return;
		}
		if (strcmp(a, "--") == 0) {
			o->script = i + 1 < o->argc ? i + 1 : o->argc;
			return;
		}
		if (strcmp(a, "-") == 0) {
			o->script = i;
			return;
		}
		if (strcmp(a, "--store") == 0) {
			if (++i >= o->argc) {
				o->bad = i - 1;
				return;
			}
			o->store = argv[i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			o->store = a + 8;
		} else if (strcmp(a, "--config") == 0) {
			if (++i >= o->argc) {
				o->bad = i - 1;
				return;
			}
			o->config = argv[i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			o->config = a + 9;
		} else if (strcmp(a, "--no-index") == 0) {
			o->access.no_index = 1;
		} else if (strcmp(a, "--policy") == 0 || strcmp(a, "--user") == 0 || strcmp(a, "--role") == 0 ||
		           strcmp(a, "--audit-file") == 0 || strcmp(a, "--access-reason") == 0) {
			if (++i >= o->argc || (strcmp(a, "--role") == 0 && o->access.n_roles >= 64)) {
				o->bad = i - 1;
				return;
			}
			if (strcmp(a, "--policy") == 0)
				o->access.policy = argv[i];
			else if (strcmp(a, "--user") == 0)
				o->access.user = argv[i];
			else if (strcmp(a, "--role") == 0)
				o->access.roles[o->access.n_roles++] = argv[i];
			else if (strcmp(a, "--audit-file") == 0)
				o->access.audit_file = argv[i];
			else
				o->access.reason = argv[i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = 1;
		} else if (strcmp(a, "-i") == 0) {
			o->interactive = o->version = 1;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
			o->version = 1;
		} else if (strcmp(a, "-E") == 0) {
			o->ignore_env = 1;
		} else if (strcmp(a, "-W") == 0) {
			o->warnings = 1;
		} else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
			if (a[1] == 'e')
				o->has_e = 1;
			if (++i >= o->argc || argv[i][0] == '-') {
				o->bad = i - 1;
				return;
			}
		} else if ((a[1] == 'e' || a[1] == 'l') && a[2] != '\0') {
			if (a[1] == 'e')
				o->has_e = 1;
		} else {
			o->bad = i;
			return;
		}
	}
	o->script = o->argc;
}

/* Runs -e and -l options in order. */
static int runargs(lua_State *L, opts *o)
{
	for (int i = 1; i < o->script; i++) {
		char *a = o->argv[i];
		if (strcmp(a, "--store") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "--policy") == 0 ||
		    strcmp(a, "--user") == 0 || strcmp(a, "--role") == 0 || strcmp(a, "--audit-file") == 0 ||
		    strcmp(a, "--access-reason") == 0) {
			i++;
			continue;
		}
		if (strcmp(a, "--no-index") == 0)
			continue;
		if (a[0] == '-' && (a[1] == 'e' || a[1] == 'l')) {
			char *extra = a[2] != '\0' ? a + 2 : o->argv[++i];
			int status = a[1] == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
			if (status != LUA_OK)
				return 0;
		} else if (strcmp(a, "-W") == 0) {
			lua_warning(L, "@on", 0);
		}
	}
	return 1;
}

static int open_store_global(lua_State *L, const char *url, const char *config_file, const access_opts *acc,
                             int ignore_env)
{
	/* durox.cli.open_options builds the same options the subcommands use */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "durox.cli");
	if (docall(L, 1, 1) != LUA_OK) {
		report(L, LUA_ERRRUN);
		return 0;
	}
	lua_getfield(L, -1, "open_options");
	lua_remove(L, -2);
	lua_pushboolean(L, 1); /* a script may write */
	if (config_file != NULL)
		lua_pushstring(L, config_file);
	else
		lua_pushnil(L);
	push_access(L, acc, ignore_env);
	if (docall(L, 3, 1) != LUA_OK) {
		report(L, LUA_ERRRUN);
		return 0;
	}
	int options = lua_gettop(L);
	lua_getglobal(L, "durox");
	lua_getfield(L, -1, "open");
	lua_pushstring(L, url);
	lua_pushvalue(L, options);
	lua_remove(L, options);
	int nargs = 2;
	if (docall(L, nargs, 3) != LUA_OK) {
		report(L, LUA_ERRRUN);
		return 0;
	}
	if (lua_isnil(L, -3)) {
		l_message(progname, lua_tostring(L, -2));
		lua_pop(L, 4);
		return 0;
	}
	lua_pop(L, 2);
	lua_setglobal(L, "dx");
	lua_pop(L, 1);
	return 1;
}

static int pmain(lua_State *L)
{
	opts *o = lua_touserdata(L, 1);
	int *exit_code = lua_touserdata(L, 2);
	luaL_checkversion(L);
	parse_args(o);
	if (o->bad) {
		fprintf(stderr, "%s: unrecognized option '%s'\n", progname, o->argv[o->bad]);
		usage(stderr);
		*exit_code = 2;
		return 0;
	}
	if (o->help) {
		usage(stdout);
		return 0;
	}
	if (o->ignore_env) {
		lua_pushboolean(L, 1);
		lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
	}
	luaL_openlibs(L);
	luaL_requiref(L, "durox", durox_luaopen, 1);
	lua_pop(L, 1);
	const char *store = o->store;
	if (store == NULL && !o->ignore_env)
		store = getenv("DUROX_STORE");
	if (store != NULL && store[0] == '\0')
		store = NULL;
	const char *config = o->config;
	if (config == NULL && !o->ignore_env)
		config = getenv("DUROX_CONFIG");
	if (config != NULL && config[0] == '\0')
		config = NULL;
	access_opts *acc = &o->access;
	if (!o->ignore_env) {
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
	createargtable(L, o->argv, o->argc, o->script);
	lua_gc(L, LUA_GCRESTART);
	lua_gc(L, LUA_GCGEN, 0, 0);

	/* a subcommand takes over everything after it */
	if (o->script < o->argc && !o->has_e && is_subcommand(o->argv[o->script]) &&
	    strcmp(o->argv[o->script - 1], "--") != 0) {
		*exit_code =
		        run_subcommand(L, o->argv + o->script, o->argc - o->script, store, config, acc, o->ignore_env);
		return 0;
	}
	if (o->version)
		fprintf(stdout, "duroxlua %s (%s)\n", DUROX_VERSION, LUA_RELEASE);
	if (store != NULL && !open_store_global(L, store, config, acc, o->ignore_env)) {
		*exit_code = 1;
		return 0;
	}
	if (!runargs(L, o)) {
		*exit_code = 1;
		return 0;
	}
	if (o->script < o->argc && handle_script(L, o->argv + o->script) != LUA_OK) {
		*exit_code = 1;
		return 0;
	}
	if (o->interactive) {
		doREPL(L);
	} else if (o->script == o->argc && !o->has_e && !o->version) {
		if (isatty(STDIN_FILENO)) {
			fprintf(stdout, "duroxlua %s (%s)%s\n", DUROX_VERSION, LUA_RELEASE,
			        lua_getglobal(L, "dx") != LUA_TNIL ? " - store open as 'dx'"
			                                           : " - no store (use --store URL)");
			lua_pop(L, 1);
			doREPL(L);
		} else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) {
			*exit_code = 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	lua_State *L = luaL_newstate();
	if (L == NULL) {
		l_message(progname, "cannot create state: not enough memory");
		return EXIT_FAILURE;
	}
	lua_gc(L, LUA_GCSTOP);
	opts o = {.argc = argc, .argv = argv, .script = argc};
	int exit_code = 0;
	lua_pushcfunction(L, pmain);
	lua_pushlightuserdata(L, &o);
	lua_pushlightuserdata(L, &exit_code);
	int status = lua_pcall(L, 2, 0, 0);
	report(L, status);
	lua_close(L);
	if (status != LUA_OK)
		return EXIT_FAILURE;
	fflush(stdout);
	return exit_code;
}
