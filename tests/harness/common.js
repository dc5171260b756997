'use strict';
// Shared helpers for the harness programs (store opening, logging, history inspection, JSON safety).

const fs = require('fs');
const path = require('path');
const native = require('duroxide-linux-x64-gnu');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function sqliteUrl(dbPath) {
  return `sqlite:${path.resolve(dbPath)}`;
}

/** Whether a store argument is a PostgreSQL URL (postgres:// or postgresql://) rather than a file path. */
function isPgUrl(store) {
  return typeof store === 'string' && /^postgres(ql)?:\/\//.test(store);
}

/**
 * Splits a duroxlua-style PostgreSQL URL into what Duroxide's PG provider takes: {url, schema}. duroxlua's own
 * parameter `schema=NAME` (default public) is removed from the query. sqlx does not accept an empty host, so
 * the libpq form `postgresql://user@/db?host=/socket/dir` gets `localhost` as host (the `host` parameter, a
 * socket directory, still decides where it connects).
 */
function pgTarget(store) {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?$/.exec(store);
  if (!m) throw new Error(`malformed PostgreSQL URL ${JSON.stringify(store)}`);
  let [, scheme, authority, dbpath, query] = m;
  let schema = 'public';
  const kept = [];
  for (const kv of (query || '').replace(/^\?/, '').split('&').filter(Boolean)) {
    const [k, v = ''] = kv.split('=');
    if (k === 'schema') schema = decodeURIComponent(v);
    else if (k === 'state_schema' || k === 'statement_timeout' || k === 'read_url') continue; // duroxlua-only
    else kept.push(kv);
  }
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${JSON.stringify(schema)}`);
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const hostport = at >= 0 ? authority.slice(at + 1) : authority;
  if (hostport === '' || hostport.startsWith(':')) authority = `${userinfo}localhost${hostport}`;
  return { url: `${scheme}${authority}${dbpath}${kept.length ? `?${kept.join('&')}` : ''}`, schema };
}

/** A short, password-free name of a store for messages. */
function storeName(store) {
  return isPgUrl(store) ? store.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@') : path.resolve(store);
}

/**
 * Opens (and, if needed, creates + migrates) the store: a SQLite file path, or a PostgreSQL URL (the schema is
 * created and migrated by Duroxide's PG provider when missing). Returns the native provider; use
 * newClient/newRuntime, which pick the right constructor.
 */
async function openProvider(store, { mustNotExist = false, mustExist = false } = {}) {
  if (isPgUrl(store)) {
    const t = pgTarget(store);
    const p = await native.JsPostgresProvider.connectWithSchema(t.url, t.schema);
    p.__durox_pg = true;
    return p;
  }
  const abs = path.resolve(store);
  if (mustNotExist && fs.existsSync(abs)) throw new Error(`refusing to overwrite existing file ${abs}`);
  if (mustExist && !fs.existsSync(abs)) throw new Error(`no such store: ${abs}`);
  return native.JsSqliteProvider.open(sqliteUrl(abs));
}

/** Duroxide's client on a provider from openProvider. */
function newClient(provider) {
  return provider.__durox_pg ? native.JsClient.fromPostgres(provider) : new native.JsClient(provider);
}

/** Duroxide's runtime on a provider from openProvider. */
function newRuntime(provider, opts) {
  return provider.__durox_pg ? native.JsRuntime.fromPostgres(provider, opts) : new native.JsRuntime(provider, opts);
}

let tracingInstalled = false;
/**
 * Routes the runtime's tracing output. Without this the runtime prints ANSI-coloured logs to STDOUT.
 * initTracing can be called once per process (first writer wins).
 */
function initLogging(logFile, { level = 'warn', format = 'json' } = {}) {
  if (tracingInstalled) return true;
  try {
    native.initTracing({ logFile, logLevel: level, logFormat: format });
    tracingInstalled = true;
    return true;
  } catch (err) {
    process.stderr.write(`harness: initTracing(${logFile}) failed: ${err && err.message}\n`);
    return false;
  }
}

/** Default runtime options used by every harness program (defaultOnly tag filter = runtime default). */
function runtimeOptions(extra) {
  return Object.assign(
    {
      orchestrationConcurrency: 4,
      workerConcurrency: 8,
      dispatcherPollIntervalMs: 50,
      serviceName: 'duroxlua-harness',
    },
    extra || {},
  );
}

/** JSON.stringify that turns non-safe integers (|n| > 2^53-1) and bigints into strings. */
function safeStringify(value, space) {
  return JSON.stringify(
    value,
    (_key, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) return String(v);
      return v;
    },
    space,
  );
}

function tryParse(text) {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch (_) {
    return undefined;
  }
}

/**
 * Failure classification from a failed execution's history (last OrchestrationFailed event details):
 *   application | cancelled | nondeterminism | configuration | infrastructure | poison | unknown
 */
function classifyFailure(history) {
  const failed = [...(history || [])].reverse().find((e) => e.kind === 'OrchestrationFailed');
  if (!failed) return { kind: 'unknown' };
  const details = tryParse(failed.data);
  if (!details || typeof details !== 'object') return { kind: 'unknown', details: failed.data };
  if (details.Application) {
    const k = details.Application.kind;
    if (k && typeof k === 'object' && k.Cancelled) return { kind: 'cancelled', detail: 'Cancelled', reason: k.Cancelled.reason };
    return { kind: 'application', detail: typeof k === 'string' ? k : JSON.stringify(k) };
  }
  if (details.Configuration) {
    const k = details.Configuration.kind;
    if (k === 'Nondeterminism') return { kind: 'nondeterminism', detail: 'Nondeterminism' };
    return { kind: 'configuration', detail: typeof k === 'string' ? k : JSON.stringify(k) };
  }
  if (details.Infrastructure) return { kind: 'infrastructure', detail: details.Infrastructure.operation };
  if (details.Poison) return { kind: 'poison' };
  return { kind: 'unknown', details };
}

/**
 * What a Running execution is blocked on, derived from its history (as returned by
 * JsClient.readExecutionHistory). Returns e.g. 'event:Approve', 'queue:inbox', 'timer', 'activity:Name',
 * 'child', or null when nothing is outstanding (the instance would still have work to do).
 */
function outstandingWork(history) {
  const open = new Map(); // scheduling event id -> descriptor
  const pendingEvents = []; // subscriptions by name (FIFO, resolved by name)
  const pendingQueues = [];
  const buffered = new Map(); // queue name -> messages delivered before any subscription took them
  for (const e of history || []) {
    const data = tryParse(e.data);
    switch (e.kind) {
      case 'ActivityScheduled':
        open.set(e.eventId, { what: `activity:${data && data.name}`, eventId: e.eventId });
        break;
      case 'TimerCreated':
        open.set(e.eventId, { what: 'timer', eventId: e.eventId, fireAtMs: data && data.fireAtMs });
        break;
      case 'SubOrchestrationScheduled':
        open.set(e.eventId, { what: 'child', eventId: e.eventId, instance: data && data.instance });
        break;
      case 'ActivityCompleted':
      case 'ActivityFailed':
      case 'ActivityCancelRequested':
      case 'TimerFired':
      case 'SubOrchestrationCompleted':
      case 'SubOrchestrationFailed':
      case 'SubOrchestrationCancelRequested':
        if (e.sourceEventId !== undefined) open.delete(e.sourceEventId);
        break;
      case 'ExternalSubscribed':
        pendingEvents.push({ what: `event:${data && data.name}`, eventId: e.eventId, name: data && data.name });
        break;
      case 'ExternalEvent': {
        // Only delivered when a subscription is already pending (early events are NOT delivered later).
        const i = pendingEvents.findIndex((s) => s.name === (data && data.name));
        if (i >= 0) pendingEvents.splice(i, 1);
        break;
      }
      case 'ExternalSubscribedCancelled': {
        const i = pendingEvents.findIndex((s) => s.eventId === e.sourceEventId);
        if (i >= 0) pendingEvents.splice(i, 1);
        break;
      }
      case 'QueueSubscribed': {
        // queue messages are buffered (FIFO): one that arrived earlier satisfies the subscription
        const name = data && data.name;
        if ((buffered.get(name) || 0) > 0) buffered.set(name, buffered.get(name) - 1);
        else pendingQueues.push({ what: `queue:${name}`, eventId: e.eventId, name });
        break;
      }
      case 'QueueEventDelivered': {
        const name = data && data.name;
        const i = pendingQueues.findIndex((s) => s.name === name);
        if (i >= 0) pendingQueues.splice(i, 1);
        else buffered.set(name, (buffered.get(name) || 0) + 1);
        break;
      }
      case 'QueueSubscriptionCancelled': {
        const i = pendingQueues.findIndex((s) => s.eventId === e.sourceEventId);
        if (i >= 0) pendingQueues.splice(i, 1);
        break;
      }
      default:
        break;
    }
  }
  return [...open.values(), ...pendingEvents, ...pendingQueues].sort((a, b) => a.eventId - b.eventId);
}

/**
 * The runtime never closes its connection pool (not even at shutdown / process exit), so everything it
 * wrote stays in <db>-wal and the main file can be nearly empty. Best effort: fold the WAL back into the
 * main file with the sqlite3 CLI (if installed). Returns a short status string.
 */
function checkpointWal(dbPath) {
  const { execFileSync } = require('child_process');
  try {
    const out = execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.resolve(dbPath), 'PRAGMA wal_checkpoint(TRUNCATE);'], {
      encoding: 'utf8',
      timeout: 15000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    return out.startsWith('0|') ? 'ok' : `busy (${out})`;
  } catch (err) {
    return `skipped (${err.code === 'ENOENT' ? 'sqlite3 CLI not found' : String(err.message).split('\n')[0]})`;
  }
}

/** Runs an async main(), printing errors to stderr; exits explicitly (the native module keeps node alive). */
function runMain(main) {
  main().then(
    (code) => process.exit(typeof code === 'number' ? code : 0),
    (err) => {
      const text = process.env.HARNESS_DEBUG && err && err.stack ? err.stack : `error: ${err && err.message !== undefined ? err.message : String(err)}`;
      process.stderr.write(`${text}\n`);
      process.exit(1);
    },
  );
}

module.exports = {
  native,
  sleep,
  sqliteUrl,
  isPgUrl,
  pgTarget,
  storeName,
  openProvider,
  newClient,
  newRuntime,
  initLogging,
  runtimeOptions,
  safeStringify,
  tryParse,
  classifyFailure,
  outstandingWork,
  checkpointWal,
  runMain,
};
