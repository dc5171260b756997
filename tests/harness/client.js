#!/usr/bin/env node
'use strict';
// node client.js <db-path> <command> args...   — one-shot wrapper over duroxide's JsClient.
// Prints a JSON result on stdout; on failure prints the error message on stderr and exits 1.
// All payload arguments are passed RAW (they are JSON text by convention: e.g. '{"a":1}', '"ok"', 'null').

const fs = require('fs');
const common = require('./common');

const { native, openProvider, safeStringify } = common;

const USAGE = `usage: node client.js <db-path> <command> args...
  start <id> <name> <input-json> [version]    startOrchestration / startOrchestrationVersioned
  raise <id> <event> <data>                   raiseEvent
  enqueue <id> <queue> <data>                 enqueueEvent (persistent queue message)
  cancel <id> [reason]                        cancelInstance
  status <id>                                 getStatus
  wait <id> <timeout-ms>                      waitForOrchestration
  delete <id> [--force]                       deleteInstance
  info <id>                                   getInstanceInfo
  executions <id>                             listExecutions (+ getExecutionInfo each)
  history <id> [execution-id]                 readExecutionHistory (default: current execution)
  tree <id>                                   getInstanceTree
  list [status]                               listAllInstances / listInstancesByStatus
  metrics                                     getSystemMetrics + getQueueDepths
  kv <id>                                     getKvAllValues
  cancel-many <file-with-ids> [reason]        cancelInstance for each id (one per line), sequentially; prints elapsed ms
  status-page <status> <n>                    listInstancesByStatus + getInstanceInfo of the first n; prints elapsed ms + count
  start-many <file.jsonl>                     startOrchestration for each line {"id","name","input"[,"version"]}
                                              (input is raw text); prints {"count","elapsed_ms"}
  metrics-timed [n]                           getSystemMetrics + getQueueDepths n times (default 3); prints each
                                              call's in-process time in ms and the last answers
`;

class UsageError extends Error {}

function need(args, n, what) {
  if (args.length < n) throw new UsageError(`missing arguments: ${what}`);
}

function readIds(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.length > 0);
}

async function run(client, cmd, args) {
  switch (cmd) {
    case 'start': {
      need(args, 3, '<id> <name> <input-json> [version]');
      const [id, name, input, version] = args;
      if (version !== undefined) await client.startOrchestrationVersioned(id, name, input, version);
      else await client.startOrchestration(id, name, input);
      return { ok: true, instanceId: id };
    }
    case 'raise': {
      need(args, 3, '<id> <event> <data>');
      await client.raiseEvent(args[0], args[1], args[2]);
      return { ok: true };
    }
    case 'enqueue': {
      need(args, 3, '<id> <queue> <data>');
      await client.enqueueEvent(args[0], args[1], args[2]);
      return { ok: true };
    }
    case 'cancel': {
      need(args, 1, '<id> [reason]');
      await client.cancelInstance(args[0], args[1] === undefined ? null : args[1]);
      return { ok: true };
    }
    case 'status':
      need(args, 1, '<id>');
      return client.getStatus(args[0]);
    case 'wait': {
      need(args, 2, '<id> <timeout-ms>');
      const ms = Number(args[1]);
      if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`bad timeout ${args[1]}`);
      return client.waitForOrchestration(args[0], ms);
    }
    case 'delete': {
      need(args, 1, '<id> [--force]');
      const force = args.slice(1).includes('--force');
      return client.deleteInstance(args[0], force);
    }
    case 'info':
      need(args, 1, '<id>');
      return client.getInstanceInfo(args[0]);
    case 'executions': {
      need(args, 1, '<id>');
      const ids = await client.listExecutions(args[0]);
      const out = [];
      for (const e of ids) out.push(await client.getExecutionInfo(args[0], e));
      return out;
    }
    case 'history': {
      need(args, 1, '<id> [execution-id]');
      const exec = args[1] !== undefined ? Number(args[1]) : (await client.getInstanceInfo(args[0])).currentExecutionId;
      return client.readExecutionHistory(args[0], exec);
    }
    case 'tree':
      need(args, 1, '<id>');
      return client.getInstanceTree(args[0]);
    case 'list':
      return args[0] === undefined ? client.listAllInstances() : client.listInstancesByStatus(args[0]);
    case 'metrics':
      return { systemMetrics: await client.getSystemMetrics(), queueDepths: await client.getQueueDepths() };
    case 'kv':
      need(args, 1, '<id>');
      return client.getKvAllValues(args[0]);
    case 'cancel-many': {
      need(args, 1, '<file-with-ids> [reason]');
      const ids = readIds(args[0]);
      const reason = args[1] === undefined ? null : args[1];
      const t0 = process.hrtime.bigint();
      for (const id of ids) await client.cancelInstance(id, reason);
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      return { count: ids.length, elapsed_ms: Math.round(elapsed * 1000) / 1000 };
    }
    case 'status-page': {
      need(args, 2, '<status> <n>');
      const n = Number(args[1]);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`bad n ${args[1]}`);
      const t0 = process.hrtime.bigint();
      const ids = await client.listInstancesByStatus(args[0]);
      const infos = [];
      for (const id of ids.slice(0, n)) infos.push(await client.getInstanceInfo(id));
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      return { status: args[0], total: ids.length, count: infos.length, elapsed_ms: Math.round(elapsed * 1000) / 1000 };
    }
    case 'start-many': {
      need(args, 1, '<file.jsonl>');
      const lines = readIds(args[0]);
      const t0 = process.hrtime.bigint();
      for (const line of lines) {
        const o = JSON.parse(line);
        if (o.version !== undefined) await client.startOrchestrationVersioned(o.id, o.name, o.input, o.version);
        else await client.startOrchestration(o.id, o.name, o.input);
      }
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      return { count: lines.length, elapsed_ms: Math.round(elapsed * 1000) / 1000 };
    }
    case 'metrics-timed': {
      const n = args[0] === undefined ? 3 : Number(args[0]);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`bad n ${args[0]}`);
      const runs = [];
      let last = null;
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        const systemMetrics = await client.getSystemMetrics();
        const t1 = process.hrtime.bigint();
        const queueDepths = await client.getQueueDepths();
        const t2 = process.hrtime.bigint();
        runs.push({
          system_metrics_ms: Math.round(Number(t1 - t0) / 1e3) / 1e3,
          queue_depths_ms: Math.round(Number(t2 - t1) / 1e3) / 1e3,
        });
        last = { systemMetrics, queueDepths };
      }
      return { runs, ...last };
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  }
}

async function main() {
  const [dbPath, cmd, ...args] = process.argv.slice(2);
  if (!dbPath || !cmd || dbPath === '-h' || dbPath === '--help') {
    process.stderr.write(USAGE);
    return 2;
  }
  try {
    const provider = await openProvider(dbPath, { mustExist: true });
    const client = common.newClient(provider);
    const result = await run(client, cmd, args);
    process.stdout.write(`${safeStringify(result === undefined ? null : result)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${err && err.message !== undefined ? err.message : String(err)}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
    return 1;
  }
}

if (require.main === module) common.runMain(main);
