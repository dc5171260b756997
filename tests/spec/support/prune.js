#!/usr/bin/env node
'use strict';
// node prune.js <db> <id> [keepLast|-] [completedBeforeMs|-] - Duroxide's own
// pruneExecutions (JsClient) on one instance, for the differential tests of our prune.
// Prints {instancesProcessed, executionsDeleted, eventsDeleted}; exit 1 with the message on error.
const path = require('path');
const common = require(path.join(process.env.DUROX_HARNESS || path.join(__dirname, '../../harness'), 'common'));

async function main() {
  const [db, id, keep, before] = process.argv.slice(2);
  const provider = await common.openProvider(db, { mustExist: true });
  const client = common.newClient(provider);
  const opts = {};
  if (keep !== undefined && keep !== '-') opts.keepLast = Number(keep);
  if (before !== undefined && before !== '-') opts.completedBefore = Number(before);
  try {
    const r = await client.pruneExecutions(id, opts);
    process.stdout.write(`${common.safeStringify(r)}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`${e && e.message}\n`);
    return 1;
  }
}

common.runMain(main);
