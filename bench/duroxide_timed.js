#!/usr/bin/env node
'use strict';
// node duroxide_timed.js <db-path> <what> [rounds] - Duroxide's own management API on a store,
// timed inside the node process after the provider is open (what bench/index_bench.sh puts
// beside duroxlua's figures). Prints one JSON object: the median, min and max ms of `rounds`
// calls (default 5; the first call is reported separately as `first`), and the same in the
// process's CPU ms (`cpu_first`, `cpu_median`) and the server's (`srv_first`, `srv_median`, with
// $PG_POSTMASTER_PID set: the postmaster of a local PostgreSQL server).
//   status-page   listInstancesByStatus('Failed') + getInstanceInfo of the first 100
//   list-all      listAllInstances (ids only, as Duroxide returns them)
//   list-all-info listAllInstances + getInstanceInfo of every instance (the work of a listing
//                 that returns a summary per instance, as duroxlua's list_instances does)
//   system        getSystemMetrics
//   queues        getQueueDepths
const common = require('../tests/harness/common');

const { openProvider } = common;

// The CPU ms of the PostgreSQL server's processes (the children of $PG_POSTMASTER_PID, from
// /proc, 10 ms ticks), 0 when unset: the backend's share of a call.
function serverCpu() {
  const pm = process.env.PG_POSTMASTER_PID;
  if (!pm) return 0;
  const fs = require('fs');
  const out = require('child_process').execSync(`ps -o pid= --ppid ${pm}`).toString();
  let ms = 0;
  for (const pid of out.split(/\s+/).filter(Boolean)) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      ms += (Number(rest[11]) + Number(rest[12])) * 10;
    } catch (e) { /* gone */ }
  }
  return ms;
}

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
  const srvs = [];
  let first = null;
  let cpu_first = null;
  let srv_first = null;
  let count = null;
  for (let i = 0; i <= rounds; i++) {
    const s0 = serverCpu();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    count = await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const cms = (c.user + c.system) / 1000;
    const sms = serverCpu() - s0;
    if (i === 0) {
      first = ms;
      cpu_first = cms;
      srv_first = sms;
    } else {
      times.push(ms);
      cpus.push(cms);
      srvs.push(sms);
    }
  }
  const mid = (t) => t.sort((a, b) => a - b)[Math.floor((t.length - 1) / 2)];
  const median = mid(times);
  const cpu_median = mid(cpus);
  const srv_median = mid(srvs);
  process.stdout.write(JSON.stringify({ what, first, median, min: times[0], max: times[times.length - 1], count,
    cpu_first, cpu_median, srv_first, srv_median }) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${e && e.message}\n`);
  process.exit(1);
});
