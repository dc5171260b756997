#!/usr/bin/env node
'use strict';
// node pg_queue_turns.js URL enqueue K      Duroxide's client starts K new instances (K
//                                           StartOrchestration items in orchestrator_queue)
// node pg_queue_turns.js URL measure N K    getQueueDepths after the provider is open: its first
//                                           call, then N times: K items enqueued (untimed), one
//                                           call timed. Prints one JSON object (ms): first,
//                                           turns (median of the N), cpu_first, cpu_turns
// What bench/pg_queue_bench.sh puts beside get_queue_metrics "after new turns". The instances
// are named bench-q-<pid>-<time>-<k> and stay queued (no runtime runs them).
const common = require('../tests/harness/common');

async function main() {
  const [db, what, a, b] = process.argv.slice(2);
  const provider = await common.openProvider(db, { mustExist: true });
  const client = common.newClient(provider);
  let seq = 0;
  const enqueue = async (k) => {
    for (let i = 0; i < k; i++)
      await client.startOrchestration(`bench-q-${process.pid}-${Date.now()}-${seq++}`, 'Echo', '"q"');
  };
  if (what === 'enqueue') {
    await enqueue(Number(a || 3));
    return;
  }
  if (what !== 'measure') throw new Error(`unknown ${what}`);
  const timed = async () => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await client.getQueueDepths();
    const c = process.cpuUsage(c0);
    return [Number(process.hrtime.bigint() - t0) / 1e6, (c.user + c.system) / 1000];
  };
  const [first, cpu_first] = await timed();
  const ms = [];
  const cpu = [];
  for (let i = 0; i < Number(a || 5); i++) {
    await enqueue(Number(b || 3));
    const [t, c] = await timed();
    ms.push(t);
    cpu.push(c);
  }
  const mid = (t) => t.sort((x, y) => x - y)[Math.floor((t.length - 1) / 2)];
  process.stdout.write(JSON.stringify({ first, turns: mid(ms), cpu_first, cpu_turns: mid(cpu) }) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${e && e.message}\n`);
  process.exit(1);
});
