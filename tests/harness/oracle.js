#!/usr/bin/env node
'use strict';
// node oracle.js <db-path> [instance ids...]
//
// Prints ONE JSON document with Duroxide's own management answers for the store (JsClient on the same
// store, no runtime started). Every call is wrapped: a failing call is recorded as {"error": "<message>"}.
// Integers outside the safe range (|n| > 2^53-1) are emitted as strings (they cannot be exact anyway: the
// native module converts i64 to a JS double).

const common = require('./common');

const { native, openProvider, safeStringify } = common;
const STATUSES = ['Running', 'Completed', 'Failed', 'ContinuedAsNew'];
const CONCURRENCY = 8;

async function attempt(fn) {
  try {
    const v = await fn();
    return v === undefined ? null : v;
  } catch (err) {
    return { error: err && err.message !== undefined ? String(err.message) : String(err) };
  }
}

async function describeInstance(client, id) {
  const out = {};
  out.info = await attempt(() => client.getInstanceInfo(id));
  out.status = await attempt(() => client.getStatus(id));
  out.executions = await attempt(() => client.listExecutions(id));
  out.executionInfo = {};
  out.history = {};
  if (Array.isArray(out.executions)) {
    for (const e of out.executions) {
      out.executionInfo[String(e)] = await attempt(() => client.getExecutionInfo(id, e));
      out.history[String(e)] = await attempt(() => client.readExecutionHistory(id, e));
    }
  }
  out.tree = await attempt(() => client.getInstanceTree(id));
  out.stats = await attempt(() => client.getOrchestrationStats(id));
  out.kv = await attempt(() => client.getKvAllValues(id));
  return out;
}

async function main() {
  const [dbPath, ...ids] = process.argv.slice(2);
  if (!dbPath || dbPath === '-h' || dbPath === '--help') {
    process.stderr.write('usage: node oracle.js <db-path> [instance ids...]\n');
    return 2;
  }
  const provider = await openProvider(dbPath, { mustExist: true });
  const client = common.newClient(provider);

  const doc = {};
  doc.systemMetrics = await attempt(() => client.getSystemMetrics());
  doc.queueDepths = await attempt(() => client.getQueueDepths());
  doc.listAll = await attempt(() => client.listAllInstances());
  doc.byStatus = {};
  for (const s of STATUSES) doc.byStatus[s] = await attempt(() => client.listInstancesByStatus(s));

  const targets = ids.length > 0 ? ids : Array.isArray(doc.listAll) ? doc.listAll : [];
  const described = new Array(targets.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, targets.length) }, async () => {
      while (next < targets.length) {
        const i = next++;
        described[i] = await describeInstance(client, targets[i]);
      }
    }),
  );
  doc.instances = {};
  targets.forEach((id, i) => {
    doc.instances[id] = described[i];
  });
  process.stdout.write(`${safeStringify(doc)}\n`);
  return 0;
}

if (require.main === module) common.runMain(main);
