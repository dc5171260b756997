#!/usr/bin/env node
'use strict';
// node live.js <db-path> [--stdin-eof] [--log-level L] [--log-format json|compact|pretty]
//                        [--shutdown-timeout MS] [--tag-filter MODE] [--tags a,b] [--checkpoint]
//                        [--worker-lock-timeout MS]
//
// Runs the real Duroxide runtime (every harness orchestration/activity registered) on the store until
// SIGTERM/SIGINT (or stdin EOF with --stdin-eof), then shuts down gracefully and exits 0.
// Prints exactly "ready" on its own line on stdout once the runtime has started; nothing else goes to
// stdout. Runtime tracing (warnings/errors, JSON lines by default) goes to stderr.
// It processes whatever appears in orchestrator_queue, including rows INSERTed by other tools.

const common = require('./common');
const { registerAll } = require('./orchestrations');

const { native, openProvider, initLogging, runtimeOptions } = common;

function parseArgs(argv) {
  const o = { db: null, stdinEof: false, logLevel: 'warn', logFormat: 'json', shutdownTimeout: 1000, tagFilter: null, tags: null, checkpoint: false, workerLockTimeout: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--stdin-eof') o.stdinEof = true;
    else if (a === '--log-level') o.logLevel = argv[++i];
    else if (a === '--log-format') o.logFormat = argv[++i];
    else if (a === '--shutdown-timeout') o.shutdownTimeout = Number(argv[++i]);
    else if (a === '--tag-filter') o.tagFilter = argv[++i];
    else if (a === '--tags') o.tags = String(argv[++i]).split(',').filter(Boolean);
    else if (a === '--checkpoint') o.checkpoint = true;
    else if (a === '--worker-lock-timeout') o.workerLockTimeout = Number(argv[++i]);
    else if (!a.startsWith('--') && o.db === null) o.db = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.db) throw new Error('missing <db-path>');
  if (!Number.isFinite(o.shutdownTimeout) || o.shutdownTimeout < 1) throw new Error('--shutdown-timeout must be >= 1 ms');
  if (o.workerLockTimeout !== null && !(Number.isInteger(o.workerLockTimeout) && o.workerLockTimeout >= 1))
    throw new Error('--worker-lock-timeout must be an integer >= 1 ms');
  return o;
}

function err(msg) {
  process.stderr.write(`[live] ${msg}\n`);
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\nusage: node live.js <db-path> [--stdin-eof] [--log-level L] [--log-format F] [--shutdown-timeout MS] [--tag-filter MODE] [--tags a,b] [--checkpoint] [--worker-lock-timeout MS]\n`);
    return 2;
  }
  // Without initTracing the runtime would print its logs to STDOUT; send them to stderr instead.
  initLogging('/dev/stderr', { level: opts.logLevel, format: opts.logFormat });

  const provider = await openProvider(opts.db);
  const extra = {};
  if (opts.tagFilter) extra.workerTagFilter = opts.tagFilter;
  if (opts.tags) extra.workerTagFilterTags = opts.tags;
  if (opts.workerLockTimeout !== null) extra.workerLockTimeoutMs = opts.workerLockTimeout;
  const runtime = common.newRuntime(provider, runtimeOptions(extra));
  const driver = registerAll(runtime);

  let stopping = null;
  const stop = (why) => {
    if (stopping) return stopping;
    err(`stopping (${why})`);
    stopping = (async () => {
      try {
        await runtime.shutdown(opts.shutdownTimeout);
      } catch (e) {
        err(`shutdown error: ${e && e.message}`);
        return 1;
      }
      if (opts.checkpoint) err(`WAL checkpoint: ${common.checkpointWal(opts.db)}`);
      err(`stopped (generators created: ${driver.stats.created}, still open: ${driver.generators.size})`);
      return 0;
    })();
    return stopping;
  };

  let signalled = false;
  const done = new Promise((resolve) => {
    const onSignal = (sig) => {
      if (signalled) {
        err(`second ${sig}: exiting immediately`);
        process.exit(1);
      }
      signalled = true;
      resolve(stop(sig));
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    if (opts.stdinEof) {
      process.stdin.on('end', () => resolve(stop('stdin EOF')));
      process.stdin.on('error', () => resolve(stop('stdin error')));
      process.stdin.resume();
    }
  });

  await runtime.start();
  process.stdout.write('ready\n');
  return done;
}

if (require.main === module) common.runMain(main);
