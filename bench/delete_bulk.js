#!/usr/bin/env node
'use strict';
// node delete_bulk.js <db> <file-with-ids> - Duroxide's own bulk delete
// (JsClient.deleteInstanceBulk({instanceIds})) of the listed root instances, for
// bench/live_throughput.sh. Prints {"result": ..., "elapsed_ms": ...}.
const fs = require('fs');
const path = require('path');
const common = require(path.join(__dirname, '../tests/harness/common'));

async function main() {
  const [db, file] = process.argv.slice(2);
  const ids = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const provider = await common.openProvider(db, { mustExist: true });
  const client = new common.native.JsClient(provider);
  const t0 = process.hrtime.bigint();
  const result = await client.deleteInstanceBulk({ instanceIds: ids, limit: ids.length });
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`${common.safeStringify({ result, elapsed_ms: Math.round(elapsed) })}\n`);
  return 0;
}

common.runMain(main);
