#!/usr/bin/env node
'use strict';
// node duroxide_timed.js <db-path> <what> [rounds] - Duroxide's own management API on a store,
// timed inside the node process after the provider is open (what bench/index_bench.sh puts
// beside duroxlua's figures). Prints one JSON object: the median, min and max ms of `rounds`
// calls (default 5; the first call is reported separately as `first`), and the same in the
// process's CPU ms (`cpu_first`, `cpu_median`).
//   status-page   listInstancesByStatus('Failed') + getInstanceInfo of the first 100
//   list-all      listAllInstances (ids only, as Duroxide returns them)
//   list-all-info listAllInstances + getInstanceInfo of every instance (the work of a listing
//                 that returns a summary per instance, as duroxlua's list_instances does)
//   system        getSystemMetrics
//   queues        getQueueDepths
const common = require('../tests/harness/common');

const { openProvider } = common;

async function main() {
  const [db, what, roundsArg] = process.argv.slice(2);
  const rounds = Number(roundsArg || 5);
  const provider = await openProvider(db);
  const client = common.newClient(provider); // SQLite or PostgreSQL
  const calls = {
    'status-page': async () => {
      const ids = await client.listInstancesByStatus('Failed');
      const page = ids.slice(0, 100);
      for (const id of page) await client.getInstanceInfo(id);
      return page.length;
    },
    'list-all': async () => (await client.listAllInstances()).length,
    'list-all-info': async () => {
      const ids = await client.listAllInstances();
      for (const id of ids) await client.getInstanceInfo(id);
      return ids.length;
    },
    system: async () => (await client.getSystemMetrics()).totalInstances,
    queues: async () => (await client.getQueueDepths()).orchestratorQueue,
  };
  const fn = calls[what];
  if (!fn) throw new Error(`unknown measure ${what}`);
  // wall ms, and the CPU ms the whole process spent (every thread: the provider's work runs
  // on the runtime's threads), so that a loaded machine can be judged by CPU time too
  const times = [];
  const cpus = [];
  let first = null;
  let cpu_first = null;
  let count = null;
  for (let i = 0; i <= rounds; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    count = await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const cms = (c.user + c.system) / 1000;
    if (i === 0) {
      first = ms;
      cpu_first = cms;
    } else {
      times.push(ms);
      cpus.push(cms);
    }
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  const median = times[Math.floor((times.length - 1) / 2)];
  const cpu_median = cpus[Math.floor((cpus.length - 1) / 2)];
  process.stdout.write(JSON.stringify({ what, first, median, min: times[0], max: times[times.length - 1], count,
    cpu_first, cpu_median }) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${e && e.message}\n`);
  process.exit(1);
});
