#!/usr/bin/env node
'use strict';
// node scenarios.js create <db-path> [--set scenarios|shapes] [--demo N] [--log FILE] [--seed S]
//
// Creates a NEW SQLite store with the real Duroxide runtime, runs every scenario until each instance is in
// its expected stable state, shuts the runtime down and writes <db-path>.manifest.json describing every
// instance (asserted against Duroxide's own getStatus/getInstanceInfo/listExecutions/readExecutionHistory).
// --set shapes makes a second, smaller store holding the history shapes the main set lacks (races,
// cancelled activities and sub-orchestrations, syscalls, approval with timeout, carried-over queue
// messages, retries, sessions, KeyValuesCleared, an unregistered start, poisoned / nearly poisoned
// activities), so the main store and every expectation built on it stay as they are.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const common = require('./common');
const { registerAll } = require('./orchestrations');

const { native, sleep, openProvider, initLogging, runtimeOptions, safeStringify, tryParse, classifyFailure, outstandingWork } =
  common;

const GLOBAL_TIMEOUT_MS = Number(process.env.HARNESS_TIMEOUT_MS) || 90000; // env override for testing the timeout path
const POLL_MS = 120;
const POLL_CONCURRENCY = 8;
const WAVE_GAP_MS = 1250;
const INLINE_OUTPUT_LIMIT = 4096;
const DEFAULT_SEED = 20240601;
// worker lock of the runtimes the poison phase kills: short, so a killed worker's lock expires
// soon, yet long enough that a loaded machine still renews it in time (no second fetch)
const POISON_LOCK_MS = 2000;

// ---------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------

/** JSON string literal text of exactly `bytes` bytes (ASCII), e.g. "duroxide-payload-...". */
function jsonStringOfBytes(bytes) {
  const unit = 'duroxide-payload-0123456789abcdef;';
  let s = '';
  while (s.length < bytes - 2) s += unit;
  return `"${s.slice(0, bytes - 2)}"`;
}

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Seeded PRNG (mulberry32): deterministic demo data. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return function rand() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick(rand, weighted) {
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [v, w] of weighted) {
    r -= w;
    if (r < 0) return v;
  }
  return weighted[weighted.length - 1][0];
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const idx = i++;
      out[idx] = await fn(items[idx], idx);
    }
  });
  await Promise.all(workers);
  return out;
}

const seqOutput = (v) => JSON.stringify({ input: v, added: v + 1, multiplied: (v + 1) * 10, formatted: `result=${(v + 1) * 10}` });

// ---------------------------------------------------------------------------------------------------
// plan: what to start, what to do later, and what every instance must look like at the end
// ---------------------------------------------------------------------------------------------------

class Plan {
  constructor() {
    this.starts = []; // {id, name, input (raw text), version?, wave}
    this.preRaises = []; // {id, event, data} enqueued right after the start, before the runtime runs
    this.preEnqueues = []; // {id, queue, data} queue messages enqueued likewise
    this.poison = []; // {id, name, input, fetches}: started after the main phase, see runPoisonPhase
    this.expectDepths = null; // {orchestratorQueue, workerQueue} at the end of the main phase (default: derived)
    this.followups = []; // {id, waitFor, action(client), what}
    this.expect = new Map(); // id -> expectation
  }

  start(id, name, input, opts) {
    const o = opts || {};
    this.starts.push({ id, name, input, version: o.version, wave: o.wave || 'A' });
  }

  expectInstance(id, spec) {
    if (this.expect.has(id)) throw new Error(`duplicate expectation for ${id}`);
    this.expect.set(id, Object.assign({ version: '1.0.0', executions: 1, parent: null }, spec));
  }

  followup(id, waitFor, what, action) {
    this.followups.push({ id, waitFor, what, action });
  }
}

function buildScenarios(plan) {
  const S = (id, scenario, name, input, expect, opts) => {
    plan.start(id, name, input, opts);
    plan.expectInstance(id, Object.assign({ scenario, name }, expect));
  };

  // --- completed ---------------------------------------------------------------------------------
  S('completed-seq-1', 'completed', 'Sequence', JSON.stringify({ value: 4 }), { status: 'Completed', output: seqOutput(4) });
  S('catch-activity-1', 'completed-caught-activity-error', 'CatchActivityFailure', 'null', {
    status: 'Completed',
    output: JSON.stringify({ caught: "Activity 'Fail' JS execution failed: GenericFailure, Error: activity failure: expected" }),
  });

  // --- failed ------------------------------------------------------------------------------------
  S('failed-activity-1', 'failed-activity-error', 'FailByActivity', JSON.stringify({ reason: 'card declined' }), {
    status: 'Failed',
    failure_kind: 'application',
    output: "Activity 'Fail' JS execution failed: GenericFailure, Error: activity failure: card declined",
  });
  S('failed-throw-1', 'failed-orchestration-throws', 'ThrowingOrchestration', JSON.stringify({ why: 'amount must be positive' }), {
    status: 'Failed',
    failure_kind: 'application',
    output: 'validation failed: amount must be positive',
  });
  S('failed-parent-1', 'failed-child-propagates', 'ParentOfFailingChild', JSON.stringify({ why: 'inventory unavailable' }), {
    status: 'Failed',
    failure_kind: 'application',
    output: 'child failed: inventory unavailable',
  });
  plan.expectInstance('failed-parent-1::sub::2', {
    scenario: 'failed-child-propagates',
    name: 'FailingChild',
    status: 'Failed',
    failure_kind: 'application',
    output: 'child failed: inventory unavailable',
    parent: 'failed-parent-1',
  });

  // --- cancelled ---------------------------------------------------------------------------------
  S('cancel-waiting-1', 'cancelled-waiting', 'WaitApprove', 'null', {
    status: 'Failed',
    failure_kind: 'cancelled',
    output: 'canceled: ops-reason',
  });
  plan.followup('cancel-waiting-1', 'event:Approve', "cancelInstance(id, 'ops-reason')", (c) =>
    c.cancelInstance('cancel-waiting-1', 'ops-reason'),
  );
  S('cancel-parent-1', 'cancelled-parent-with-child', 'ParentWithWaitingChild', 'null', {
    status: 'Failed',
    failure_kind: 'cancelled',
    output: 'canceled: ops-reason',
  });
  plan.expectInstance('cancel-parent-1::sub::2', {
    scenario: 'cancelled-parent-with-child',
    name: 'WaitApprove',
    status: 'Failed',
    failure_kind: 'cancelled',
    output: 'canceled: parent canceled',
    parent: 'cancel-parent-1',
  });
  plan.followup('cancel-parent-1::sub::2', 'event:Approve', "cancelInstance('cancel-parent-1', 'ops-reason')", (c) =>
    c.cancelInstance('cancel-parent-1', 'ops-reason'),
  );

  // --- waiting -----------------------------------------------------------------------------------
  S('wait-approve-1', 'waiting-event', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve', external_events: 0 });
  S('queue-wait-1', 'waiting-queue', 'QueueWaiter', JSON.stringify({ queue: 'inbox', count: 1 }), {
    status: 'Running',
    waiting_on: 'queue:inbox',
    external_events: 0,
  });
  S('queue-partial-1', 'waiting-queue-after-one-message', 'QueueWaiter', JSON.stringify({ queue: 'inbox', count: 2 }), {
    status: 'Running',
    waiting_on: 'queue:inbox',
    external_events: 1,
  });
  plan.followup('queue-partial-1', 'queue:inbox', "enqueueEvent(id, 'inbox', '{\"m\":1}')", (c) =>
    c.enqueueEvent('queue-partial-1', 'inbox', '{"m":1}'),
  );
  // Event raised BEFORE the orchestration subscribes (start + raise are enqueued together, the
  // orchestration first sleeps 1 s): the ExternalEvent lands in history (event 2) but is never delivered.
  S('early-event-1', 'early-raise-not-delivered', 'EarlyEventWaiter', JSON.stringify({ sleepMs: 1000 }), {
    status: 'Running',
    waiting_on: 'event:Approve',
    external_events: 1,
  });
  plan.preRaises.push({ id: 'early-event-1', event: 'Approve', data: '"early"' });
  S('sleep-1h-1', 'waiting-timer-1h', 'Sleeper', JSON.stringify({ ms: 3600000 }), { status: 'Running', waiting_on: 'timer' });
  S('pending-activity-1', 'pending-tagged-activity', 'TaggedActivity', JSON.stringify({ tag: 'gpu', frame: 1 }), {
    status: 'Running',
    waiting_on: 'activity:GpuRender',
  });

  // --- continue-as-new ---------------------------------------------------------------------------
  S('can-done-1', 'continue-as-new-completed', 'ContinueLoop', JSON.stringify({ n: 0, max: 4 }), {
    status: 'Completed',
    executions: 4,
    execution_statuses: ['ContinuedAsNew', 'ContinuedAsNew', 'ContinuedAsNew', 'Completed'],
    output: JSON.stringify({ finalN: 3 }),
  });
  S('can-wait-1', 'continue-as-new-waiting', 'ContinueLoop', JSON.stringify({ n: 0, max: 4, wait: true }), {
    status: 'Running',
    executions: 4,
    execution_statuses: ['ContinuedAsNew', 'ContinuedAsNew', 'ContinuedAsNew', 'Running'],
    waiting_on: 'event:Approve',
  });

  // --- sub-orchestration trees -------------------------------------------------------------------
  // tree-done-1: root -> 3 children (2 auto ids + explicit 'tree-done-1-explicit') -> 2 grandchildren each
  //              -> 1 great-grandchild each; 16 instances, all Completed.
  S(
    'tree-done-1',
    'tree-completed',
    'TreeNode',
    JSON.stringify({ shape: [3, 2, 1], level: 0, leaf: 'complete', explicit: { 0: { index: 2, id: 'tree-done-1-explicit' } } }),
    { status: 'Completed', output: JSON.stringify({ nodes: 16 }) },
  );
  for (const child of ['tree-done-1::sub::2', 'tree-done-1::sub::3', 'tree-done-1-explicit']) {
    plan.expectInstance(child, { scenario: 'tree-completed', name: 'TreeNode', status: 'Completed', parent: 'tree-done-1', output: JSON.stringify({ nodes: 5 }) });
    for (const g of [`${child}::sub::2`, `${child}::sub::3`]) {
      plan.expectInstance(g, { scenario: 'tree-completed', name: 'TreeNode', status: 'Completed', parent: child, output: JSON.stringify({ nodes: 2 }) });
      plan.expectInstance(`${g}::sub::2`, { scenario: 'tree-completed', name: 'TreeNode', status: 'Completed', parent: g, output: JSON.stringify({ nodes: 1 }) });
    }
  }
  // tree-wait-1: root -> 2 children (explicit 'tree-wait-1-explicit' + auto ::sub::3) -> 2 leaves each,
  //              leaves wait for 'Approve'; 7 instances Running.
  S(
    'tree-wait-1',
    'tree-waiting',
    'TreeNode',
    JSON.stringify({ shape: [2, 2], level: 0, leaf: 'wait', explicit: { 0: { index: 0, id: 'tree-wait-1-explicit' } } }),
    { status: 'Running', waiting_on: 'child' },
  );
  for (const child of ['tree-wait-1-explicit', 'tree-wait-1::sub::3']) {
    plan.expectInstance(child, { scenario: 'tree-waiting', name: 'TreeNode', status: 'Running', waiting_on: 'child', parent: 'tree-wait-1' });
    for (const leaf of [`${child}::sub::2`, `${child}::sub::3`]) {
      plan.expectInstance(leaf, { scenario: 'tree-waiting', name: 'TreeNode', status: 'Running', waiting_on: 'event:Approve', parent: child });
    }
  }

  // --- detached start ----------------------------------------------------------------------------
  S('detached-parent-1', 'detached-start', 'DetachedStarter', JSON.stringify({ childId: 'detached-child-1', name: 'Sequence', childInput: { value: 7 } }), {
    status: 'Completed',
    output: JSON.stringify({ started: 'detached-child-1' }),
  });
  plan.expectInstance('detached-child-1', { scenario: 'detached-start', name: 'Sequence', status: 'Completed', output: seqOutput(7), parent: null });

  // --- custom status -----------------------------------------------------------------------------
  S('status-wait-1', 'custom-status-waiting', 'CustomStatusWaiter', JSON.stringify({ status: '{"phase":"review"}' }), {
    status: 'Running',
    waiting_on: 'event:Approve',
    custom_status: '{"phase":"review"}',
    custom_status_version: 1,
  });
  S('status-done-1', 'custom-status-completed', 'CustomStatusDone', 'null', {
    status: 'Completed',
    output: JSON.stringify({ answer: 42 }),
    custom_status: '{"phase":"done"}',
    custom_status_version: 2,
  });

  // --- versions ----------------------------------------------------------------------------------
  S('versioned-2-1', 'versioned-start-2.0.0', 'Versioned', 'null', { status: 'Completed', version: '2.0.0', output: JSON.stringify({ version: '2.0.0', impl: 'v2' }) }, { version: '2.0.0' });
  S('versioned-1-1', 'versioned-start-1.0.0', 'Versioned', 'null', { status: 'Completed', version: '1.0.0', output: JSON.stringify({ version: '1.0.0', impl: 'v1' }) }, { version: '1.0.0' });
  // unversioned start of a name registered in 1.0.0 and 2.0.0 -> the runtime picks the latest (2.0.0)
  S('versioned-default-1', 'versioned-start-unversioned', 'Versioned', 'null', { status: 'Completed', version: '2.0.0', output: JSON.stringify({ version: '2.0.0', impl: 'v2' }) });

  // --- nondeterminism ----------------------------------------------------------------------------
  S('nondet-1', 'nondeterminism', 'Nondeterministic', 'null', {
    status: 'Failed',
    failure_kind: 'nondeterminism',
    output_prefix: 'nondeterministic: schedule mismatch',
  });

  // --- awkward instance ids ----------------------------------------------------------------------
  S("quote'single-1", 'id-single-quote', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve' });
  S('quote"double-1', 'id-double-quote', 'Echo', JSON.stringify({ text: 'say "hi"' }), { status: 'Completed', output: JSON.stringify({ text: 'say "hi"' }) });
  S('has spaces 1', 'id-spaces', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve' });
  S('ünï-日本-✓', 'id-unicode', 'Echo', JSON.stringify({ text: 'ünï ✓ 日本' }), { status: 'Completed', output: JSON.stringify({ text: 'ünï ✓ 日本' }) });
  S('pct%_1', 'id-like-wildcards', 'Echo', JSON.stringify({ pct: '%_' }), { status: 'Completed', output: JSON.stringify({ pct: '%_' }) });
  S('pctX1', 'id-like-wildcards', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve' });
  S('back\\slash-1', 'id-backslash', 'Echo', JSON.stringify({ path: 'C:\\temp' }), { status: 'Completed', output: JSON.stringify({ path: 'C:\\temp' }) });

  // --- payloads ----------------------------------------------------------------------------------
  S('payload-empty-1', 'payload-empty-string', 'EchoRaw', '', { status: 'Completed', output: '' });
  const mib = jsonStringOfBytes(1024 * 1024);
  S('payload-1mib-1', 'payload-1mib-echo', 'EchoRaw', mib, { status: 'Completed', output_length: mib.length, output_sha256: sha256(mib) });
  const k64 = jsonStringOfBytes(64 * 1024);
  S('payload-64k-event-1', 'payload-64kib-event', 'PayloadWaiter', 'null', {
    status: 'Completed',
    output: JSON.stringify({ length: 64 * 1024 }),
    external_events: 1,
  });
  plan.followup('payload-64k-event-1', 'event:Payload', "raiseEvent(id, 'Payload', <64 KiB JSON string>)", (c) =>
    c.raiseEvent('payload-64k-event-1', 'Payload', k64),
  );

  // --- KV ----------------------------------------------------------------------------------------
  S('kv-done-1', 'kv-completed', 'KvRecorder', 'null', { status: 'Completed', output: JSON.stringify({ count: 3 }), kv: { color: 'blue', count: '3' } });
  S('kv-wait-1', 'kv-waiting', 'KvRecorder', JSON.stringify({ wait: true }), { status: 'Running', waiting_on: 'event:Approve', kv: { color: 'blue', count: '3' } });

  // --- listing material: same names, 3 waves ~1.1 s apart ----------------------------------------
  const names = ['Sequence', 'Greeter', 'Echo'];
  for (const [wave, letter] of [['A', 'a'], ['B', 'b'], ['C', 'c']]) {
    for (let i = 1; i <= 7; i++) {
      const id = `list-${letter}-${String(i).padStart(2, '0')}`;
      const name = names[(i - 1) % names.length];
      let input;
      let output;
      if (name === 'Sequence') {
        input = JSON.stringify({ value: i });
        output = seqOutput(i);
      } else if (name === 'Greeter') {
        input = JSON.stringify({ name: id });
        output = JSON.stringify(`Hello, ${id}!`);
      } else {
        input = JSON.stringify({ wave, i });
        output = input;
      }
      S(id, `listing-wave-${wave}`, name, input, { status: 'Completed', output }, { wave });
    }
  }
  // a couple of waiting ones in later waves as well
  S('list-b-wait-1', 'listing-wave-B', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve' }, { wave: 'B' });
  S('list-c-wait-1', 'listing-wave-C', 'WaitApprove', 'null', { status: 'Running', waiting_on: 'event:Approve' }, { wave: 'C' });
}

/**
 * The history shapes the main set lacks (--set shapes). Every one is made by the runtime itself:
 * races decided by a timer or an event, the losers' cancellations (activity, sub-orchestration, queue
 * and event subscriptions), an approval that waits on an event and a timer at once, system calls,
 * continue-as-new carrying undelivered queue messages, a retried activity and a session activity,
 * KeyValuesCleared, a start of an unregistered orchestration (retried with the runtime's backoff) and
 * activities poisoned / one delivery short of poison by runtimes killed while they run them.
 */
function buildShapes(plan) {
  const S = (id, scenario, name, input, expect, opts) => {
    plan.start(id, name, input, opts);
    plan.expectInstance(id, Object.assign({ scenario, name }, expect));
  };
  const J = JSON.stringify;
  // --- races: select(timer, event) ---------------------------------------------------------------
  S('race-timer-1', 'race-timer-wins', 'RaceTimerEvent', J({ timerMs: 200, event: 'Go' }), { status: 'Completed', output: J({ winner: 'timer' }) });
  S('race-event-1', 'race-event-wins', 'RaceTimerEvent', J({ timerMs: 3600000, event: 'Go' }), {
    status: 'Completed',
    output: J({ winner: 'event', data: 'go!' }),
    external_events: 1,
  });
  plan.followup('race-event-1', 'timer,event:Go', "raiseEvent(id, 'Go', '\"go!\"')", (c) => c.raiseEvent('race-event-1', 'Go', '"go!"'));
  // --- approval with a timeout -------------------------------------------------------------------
  S('approval-wait-1', 'approval-with-timeout-waiting', 'ApprovalWithTimeout', J({ timeoutMs: 3600000 }), {
    status: 'Running',
    waiting_on: 'event:Approve,timer',
    custom_status: J({ phase: 'awaiting-approval' }),
    custom_status_version: 1,
  });
  S('approval-timeout-1', 'approval-timed-out', 'ApprovalWithTimeout', J({ timeoutMs: 200 }), {
    status: 'Completed',
    output: J({ timedOut: true }),
    custom_status: J({ phase: 'timed-out' }),
    custom_status_version: 2,
  });
  // --- losers of a race are cancelled (reason dropped_future) -------------------------------------
  S('race-activity-1', 'race-activity-cancelled', 'RaceActivity', J({ activityMs: 60000, timerMs: 300 }), { status: 'Completed', output: J({ winner: 'timer' }) });
  S('race-child-1', 'race-child-cancelled', 'RaceChild', J({ timerMs: 300 }), { status: 'Completed', output: J({ winner: 'timer' }) });
  plan.expectInstance('race-child-1::sub::2', {
    scenario: 'race-child-cancelled',
    name: 'WaitApprove',
    status: 'Failed',
    failure_kind: 'cancelled',
    output: 'canceled: parent dropped sub-orchestration future',
    parent: 'race-child-1',
  });
  S('race-queue-1', 'race-queue-cancelled', 'RaceQueue', J({ timerMs: 300, queue: 'inbox' }), { status: 'Completed', output: J({ winner: 'timer' }) });
  S('races-then-wait-1', 'running-after-cancelled-work', 'RacesThenWait', 'null', { status: 'Running', waiting_on: 'event:Approve' });
  plan.expectInstance('races-then-wait-1::sub::5', {
    scenario: 'running-after-cancelled-work',
    name: 'WaitApprove',
    status: 'Failed',
    failure_kind: 'cancelled',
    output: 'canceled: parent dropped sub-orchestration future',
    parent: 'races-then-wait-1',
  });
  // --- cancelling an instance while its activity runs / while it waits on a queue ------------------
  S('cancel-activity-1', 'cancelled-running-activity', 'SlowActivity', J({ ms: 60000 }), { status: 'Failed', failure_kind: 'cancelled', output: 'canceled: ops-reason' });
  plan.followup('cancel-activity-1', 'activity:SlowWork', "cancelInstance(id, 'ops-reason')", (c) => c.cancelInstance('cancel-activity-1', 'ops-reason'));
  S('cancel-queue-1', 'cancelled-waiting-queue', 'QueueWaiter', J({ queue: 'inbox', count: 1 }), { status: 'Failed', failure_kind: 'cancelled', output: 'canceled: ops-reason' });
  plan.followup('cancel-queue-1', 'queue:inbox', "cancelInstance(id, 'ops-reason')", (c) => c.cancelInstance('cancel-queue-1', 'ops-reason'));
  // --- KV cleared, then read by another instance through a system call ---------------------------
  S('kv-clear-1', 'kv-clear-all', 'KvClearAll', 'null', { status: 'Completed', output: J({ cleared: true }), kv: { after: 'yes' } });
  S('syscalls-1', 'system-calls', 'Syscalls', J({ from: 'kv-clear-1', key: 'after' }), { status: 'Completed', output: J({ guidLength: 36, nowIsNumber: true, kv: 'yes' }) }, { wave: 'C' });
  // --- continue-as-new carrying queue messages over ----------------------------------------------
  S('carry-1', 'continue-as-new-carry-forward', 'CarryForward', J({ gen: 0, rest: 2 }), {
    status: 'Completed',
    executions: 2,
    execution_statuses: ['ContinuedAsNew', 'Completed'],
    output: J({ received: [{ m: 1 }, { m: 2 }, { m: 3 }] }),
    custom_status: J({ gen: 1 }),
    custom_status_version: 2,
  });
  for (const m of [1, 2, 3]) plan.preEnqueues.push({ id: 'carry-1', queue: 'inbox', data: J({ m }) });
  // --- queue messages buffered while the instance waits on something else -------------------------
  S('queue-buffered-1', 'queue-messages-buffered', 'DequeueThenWait', 'null', { status: 'Running', waiting_on: 'event:Approve', external_events: 3 });
  for (const m of [1, 2, 3]) plan.preEnqueues.push({ id: 'queue-buffered-1', queue: 'inbox', data: J({ m }) });
  // --- an activity on a session, one retried by its policy ----------------------------------------
  S('session-retry-1', 'session-and-retry', 'SessionAndRetry', J({ failures: 2 }), { status: 'Completed', output: J({ session: { on: 'session' }, flaky: { calls: 3 } }) });
  // --- a start of an orchestration nobody registered: retried with backoff, never created ---------
  S('unregistered-1', 'unregistered-start', 'NoSuchOrchestration', J({ x: 1 }), { absent: true });
  // --- poison: runtimes killed while they run activity Hang ---------------------------------------
  plan.poison.push({ id: 'poison-past-1', name: 'HangActivity', input: J({ ms: 600000 }), fetches: 11 });
  plan.poison.push({ id: 'poison-at-1', name: 'HangActivity', input: J({ ms: 600000 }), fetches: 10 });
  plan.expectInstance('poison-past-1', {
    scenario: 'activity-poisoned',
    name: 'HangActivity',
    status: 'Failed',
    failure_kind: 'poison',
    output: 'poison: activity Hang#2 exceeded 11 attempts (max 10)',
  });
  plan.expectInstance('poison-at-1', { scenario: 'activity-at-poison-limit', name: 'HangActivity', status: 'Running', waiting_on: 'activity:Hang' });
  // timers left in the orchestrator queue: race-event-1's 1 h timer (lost the race) and approval-wait-1's
  plan.expectDepths = { orchestratorQueue: 2, workerQueue: 0 };
}

/**
 * One query on the store, by the sqlite3 CLI or psql (one value per line): sqliteSql on a SQLite file,
 * pgSql (default: the same text) on a PostgreSQL URL, in the store's schema.
 */
function storeQuery(store, sqliteSql, pgSql) {
  const { execFileSync } = require('child_process');
  const opts = { encoding: 'utf8', timeout: 15000, stdio: ['ignore', 'pipe', 'pipe'] };
  if (common.isPgUrl(store)) {
    const t = common.pgTarget(store);
    return execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', t.url, '-c', `SET search_path TO ${t.schema}`, '-c', pgSql || sqliteSql], opts).trim();
  }
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', store, sqliteSql], opts).trim();
}

/**
 * Poison through the runtime's own attempt counting: every fetch of a worker item increments its
 * attempt_count, and the runtime poisons an item fetched more than max_attempts (10) times. A worker
 * that dies while it runs the activity is what makes a real item come back: each cycle starts a runtime
 * (live.js, 2 s worker lock so the lock of a killed worker expires quickly), waits until it has fetched
 * the items again, SIGKILLs it and waits for the locks to expire. The instance due for `fetches` = 11
 * is poisoned by the runtime in the last cycle (ActivityFailed + OrchestrationFailed, Poison details);
 * the one due for 10 (started one cycle later) is left with its item fetched exactly max_attempts times.
 * The runtime has no max_attempts option in the node module and an unregistered activity's backoff
 * would take ~6 minutes to reach the limit; this takes ~12 s.
 */
async function runPoisonPhase(plan, db, client, log, deadline) {
  const { spawn } = require('child_process');
  const most = Math.max(...plan.poison.map((p) => p.fetches));
  const q = (id) => `'${id.replace(/'/g, "''")}'`;
  const attempts = (id) => {
    const out = storeQuery(db, `SELECT attempt_count FROM worker_queue WHERE instance_id = ${q(id)}`);
    return out === '' ? null : Number(out.split('\n')[0]);
  };
  const status = (id) => storeQuery(db, `SELECT status FROM executions WHERE instance_id = ${q(id)} ORDER BY execution_id DESC LIMIT 1`);
  for (const p of plan.poison) p.kills = 0;
  for (let cycle = 1; cycle <= most; cycle++) {
    // item of p is fetched in cycles (most - fetches + 1) .. most
    for (const p of plan.poison) if (cycle === most - p.fetches + 1) await client.startOrchestration(p.id, p.name, p.input);
    const child = spawn(process.execPath, [path.join(__dirname, 'live.js'), db, '--worker-lock-timeout', String(POISON_LOCK_MS)], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`timeout in cycle ${cycle}`);
        const due = plan.poison.filter((p) => cycle >= most - p.fetches + 1);
        const done = due.every((p) => {
          const fetched = cycle - (most - p.fetches + 1) + 1;
          if (fetched > 10) return status(p.id) === 'Failed'; // the runtime poisoned it
          // at least: a runtime slowed down enough to miss its lock renewal may fetch an item
          // twice in one cycle (the final check of the expectations then fails the attempt)
          const a = attempts(p.id);
          return a !== null && a >= fetched;
        });
        if (done) break;
        await sleep(50);
      }
      // let the poisoning turn finish (the orchestration has failed; nothing else is running)
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    for (const p of plan.poison) if (cycle >= most - p.fetches + 1) p.kills++;
    // wait until the killed worker's locks have expired (the next runtime may fetch the items again)
    for (;;) {
      const n = Number(
        storeQuery(
          db,
          "SELECT COUNT(*) FROM worker_queue WHERE locked_until > CAST(unixepoch('subsec') * 1000 AS INTEGER)",
          'SELECT COUNT(*) FROM worker_queue WHERE locked_until > floor(extract(epoch from clock_timestamp()) * 1000)::int8',
        ),
      );
      if (n === 0) break;
      if (Date.now() > deadline) throw new Error('timeout waiting for worker locks to expire');
      await sleep(50);
    }
  }
  log(`poison phase: ${most} runtime(s) started and SIGKILLed while they ran activity Hang`);
}

function buildDemo(plan, n, seed) {
  const rand = mulberry32(seed);
  const waves = ['A', 'B', 'C'];
  for (let i = 1; i <= n; i++) {
    const kind = pick(rand, [['order', 60], ['payment', 20], ['shipment', 20]]);
    const id = `${kind}-${String(i).padStart(4, '0')}`;
    const wave = waves[i % 3];
    const amount = Math.round(rand() * 50000) / 100;
    if (kind === 'order') {
      const planName = pick(rand, [
        ['complete', 45],
        ['decline', 12],
        ['outofstock', 5],
        ['approval', 14],
        ['cancel', 8],
        ['sleep', 10],
        ['pickup', 6],
      ]);
      const sku = `SKU-${1 + Math.floor(rand() * 40)}`;
      const input = { orderId: id, amount, sku, plan: planName, lines: 1 + Math.floor(rand() * 5) };
      plan.start(id, 'Order', JSON.stringify(input), { wave });
      const sc = `demo-order-${planName}`;
      const pay = `${id}::sub::6`;
      const ship = `${id}::sub::9`;
      const declineMsg = `Activity 'ChargeCard' JS execution failed: GenericFailure, Error: card declined for ${id} (amount ${amount})`;
      const base = { scenario: sc, name: 'Order' };
      switch (planName) {
        case 'complete':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Completed', custom_status: JSON.stringify({ phase: 'done', orderId: id }) }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Completed', parent: id });
          plan.expectInstance(ship, { scenario: sc, name: 'Shipment', status: 'Completed', parent: id });
          break;
        case 'decline':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Failed', failure_kind: 'application', output: declineMsg }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Failed', failure_kind: 'application', output: declineMsg, parent: id });
          break;
        case 'outofstock':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Failed', failure_kind: 'application', output: `out of stock: ${sku} for ${id}` }));
          break;
        case 'approval':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Running', waiting_on: 'event:ManagerApproval', custom_status: JSON.stringify({ phase: 'awaiting-approval', orderId: id }) }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Completed', parent: id });
          break;
        case 'cancel':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Failed', failure_kind: 'cancelled', output: 'canceled: customer request' }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Completed', parent: id });
          plan.followup(id, 'event:ManagerApproval', "cancelInstance(id, 'customer request')", (c) => c.cancelInstance(id, 'customer request'));
          break;
        case 'sleep':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Running', waiting_on: 'timer', custom_status: JSON.stringify({ phase: 'waiting-for-delivery-window', orderId: id }) }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Completed', parent: id });
          break;
        case 'pickup':
          plan.expectInstance(id, Object.assign({}, base, { status: 'Running', waiting_on: 'child' }));
          plan.expectInstance(pay, { scenario: sc, name: 'Payment', status: 'Completed', parent: id });
          plan.expectInstance(ship, { scenario: sc, name: 'Shipment', status: 'Running', waiting_on: 'event:PickedUp', parent: id });
          break;
        default:
          throw new Error(planName);
      }
    } else if (kind === 'payment') {
      const decline = rand() < 0.25;
      plan.start(id, 'Payment', JSON.stringify({ orderId: id, amount, decline }), { wave });
      if (decline) {
        plan.expectInstance(id, {
          scenario: 'demo-payment-decline',
          name: 'Payment',
          status: 'Failed',
          failure_kind: 'application',
          output: `Activity 'ChargeCard' JS execution failed: GenericFailure, Error: card declined for ${id} (amount ${amount})`,
        });
      } else {
        plan.expectInstance(id, { scenario: 'demo-payment-complete', name: 'Payment', status: 'Completed' });
      }
    } else {
      const waitPickup = rand() < 0.3;
      plan.start(id, 'Shipment', JSON.stringify({ orderId: id, waitPickup }), { wave });
      if (waitPickup) plan.expectInstance(id, { scenario: 'demo-shipment-pickup', name: 'Shipment', status: 'Running', waiting_on: 'event:PickedUp' });
      else plan.expectInstance(id, { scenario: 'demo-shipment-complete', name: 'Shipment', status: 'Completed' });
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// observation + comparison
// ---------------------------------------------------------------------------------------------------

async function observe(client, id) {
  let info;
  try {
    info = await client.getInstanceInfo(id);
  } catch (err) {
    return { exists: false, error: err.message };
  }
  const st = await client.getStatus(id);
  const execIds = await client.listExecutions(id);
  const execStatuses = [];
  for (const e of execIds) {
    if (e === info.currentExecutionId) execStatuses.push(info.status);
    else execStatuses.push((await client.getExecutionInfo(id, e)).status);
  }
  const history = await client.readExecutionHistory(id, info.currentExecutionId);
  const obs = {
    exists: true,
    name: info.orchestrationName,
    version: info.orchestrationVersion,
    status: info.status,
    client_status: st.status,
    executions: execIds.length,
    execution_statuses: execStatuses,
    parent: info.parentInstanceId === undefined ? null : info.parentInstanceId,
    // getInstanceInfo reports "" for Running (NULL) outputs; getStatus is authoritative for terminal ones
    output: info.status === 'Completed' ? st.output : info.status === 'Failed' ? st.error : null,
    info_output: info.output,
    custom_status: st.customStatus === undefined ? null : st.customStatus,
    custom_status_version: st.customStatusVersion,
    external_events: history.filter((e) => e.kind === 'ExternalEvent' || e.kind === 'QueueEventDelivered').length,
    history_events: history.length,
  };
  if (info.status === 'Running') {
    const open = outstandingWork(history);
    const whats = [...new Set(open.map((o) => o.what))];
    obs.waiting_on = whats.length === 0 ? null : whats.join(',');
    const timer = open.find((o) => o.what === 'timer');
    if (timer) obs.timer_fire_at_ms = timer.fireAtMs;
  }
  if (info.status === 'Failed') {
    const f = classifyFailure(history);
    obs.failure_kind = f.kind;
    obs.failure_detail = f.detail;
  }
  obs.kv = await client.getKvAllValues(id);
  return obs;
}

function mismatches(exp, obs) {
  const out = [];
  if (exp.absent) return obs && obs.exists ? [`instance exists (status ${obs.status}), expected none`] : [];
  if (!obs || !obs.exists) return [`instance does not exist yet (${obs && obs.error})`];
  const eq = (field, a, b) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${field}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`);
  };
  eq('status', exp.status, obs.status);
  eq('client status', exp.status, obs.client_status);
  eq('name', exp.name, obs.name);
  eq('version', exp.version, obs.version);
  eq('parent', exp.parent, obs.parent);
  eq('executions', exp.executions, obs.executions);
  if (exp.execution_statuses) eq('execution_statuses', exp.execution_statuses, obs.execution_statuses);
  if (exp.status === 'Running') eq('waiting_on', exp.waiting_on, obs.waiting_on);
  if (exp.status === 'Failed') eq('failure_kind', exp.failure_kind, obs.failure_kind);
  if (exp.output !== undefined) eq('output', exp.output, obs.output);
  if (exp.output_prefix !== undefined && !(typeof obs.output === 'string' && obs.output.startsWith(exp.output_prefix)))
    out.push(`output: expected prefix ${JSON.stringify(exp.output_prefix)}, got ${JSON.stringify(obs.output)}`);
  if (exp.output_length !== undefined) eq('output length', exp.output_length, obs.output === null ? null : obs.output.length);
  if (exp.output_sha256 !== undefined) eq('output sha256', exp.output_sha256, obs.output === null ? null : sha256(obs.output));
  if (exp.custom_status !== undefined) eq('custom_status', exp.custom_status, obs.custom_status);
  if (exp.custom_status_version !== undefined) eq('custom_status_version', exp.custom_status_version, obs.custom_status_version);
  if (exp.external_events !== undefined) eq('external_events', exp.external_events, obs.external_events);
  if (exp.kv !== undefined) eq('kv', sortKeys(exp.kv), sortKeys(obs.kv));
  return out;
}

function sortKeys(o) {
  const r = {};
  for (const k of Object.keys(o || {}).sort()) r[k] = o[k];
  return r;
}

// ---------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------

function usage() {
  process.stderr.write('usage: node scenarios.js create <db-path|postgres-url> [--set scenarios|shapes] [--demo N] [--seed S] [--log FILE] [--manifest FILE]\n');
  return 2;
}

async function create(argv) {
  const dbPath = argv[0];
  if (!dbPath) return usage();
  let demo = 0;
  let seed = DEFAULT_SEED;
  let logFile = '/dev/null';
  let set = 'scenarios';
  let manifestPath = null;
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === '--demo') demo = parseInt(argv[++i], 10);
    else if (argv[i] === '--set') set = argv[++i];
    else if (argv[i] === '--manifest') manifestPath = argv[++i];
    else if (argv[i] === '--seed') seed = parseInt(argv[++i], 10);
    else if (argv[i] === '--log') logFile = argv[++i];
    else return usage();
  }
  if (!Number.isInteger(demo) || demo < 0) return usage();
  if (set !== 'scenarios' && set !== 'shapes') return usage();
  if (set === 'shapes' && demo > 0) return usage();
  const pg = common.isPgUrl(dbPath);
  // A PostgreSQL store is a URL (its schema must be new: the caller makes a fresh database or schema); its
  // manifest goes to --manifest (default: none beside a URL, so it is required).
  const abs = pg ? dbPath : path.resolve(dbPath);
  if (pg && !manifestPath) throw new Error('a PostgreSQL store needs --manifest FILE');
  if (!manifestPath) manifestPath = `${abs}.manifest.json`;
  if (!pg) {
    if (fs.existsSync(abs)) throw new Error(`refusing to create ${abs}: file already exists`);
    for (const suffix of ['-wal', '-shm']) {
      if (fs.existsSync(abs + suffix)) throw new Error(`refusing to create ${abs}: stale ${abs + suffix} exists`);
    }
  }

  const t0 = Date.now();
  const deadline = t0 + GLOBAL_TIMEOUT_MS;
  const log = (msg) => process.stderr.write(`[scenarios +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);

  const plan = new Plan();
  if (set === 'shapes') buildShapes(plan);
  else buildScenarios(plan);
  if (demo > 0) buildDemo(plan, demo, seed);

  initLogging(logFile, { level: 'warn', format: 'json' });
  const provider = await openProvider(abs, { mustNotExist: true });
  const client = common.newClient(provider);
  if (pg && (await client.getSystemMetrics()).totalInstances !== 0) throw new Error(`refusing to create: ${common.storeName(abs)} is not empty`);
  const runtime = common.newRuntime(provider, runtimeOptions({ workerConcurrency: 16 }));
  registerAll(runtime);

  // Wave A (and the early raise) is enqueued BEFORE the runtime runs, so the early raise deterministically
  // arrives in the same first turn as the start (history: Started, ExternalEvent, TimerCreated, ...).
  const byWave = { A: [], B: [], C: [] };
  for (const s of plan.starts) byWave[s.wave].push(s);
  const startOne = async (s) => {
    if (s.version) await client.startOrchestrationVersioned(s.id, s.name, s.input, s.version);
    else await client.startOrchestration(s.id, s.name, s.input);
    for (const r of plan.preRaises.filter((p) => p.id === s.id)) await client.raiseEvent(r.id, r.event, r.data);
    for (const r of plan.preEnqueues.filter((p) => p.id === s.id)) await client.enqueueEvent(r.id, r.queue, r.data);
  };
  for (const s of byWave.A) await startOne(s);
  log(`enqueued wave A (${byWave.A.length} starts); starting runtime`);
  await runtime.start();
  const tStart = Date.now();
  let failed = null;
  const fail = (msg) => {
    if (!failed) failed = msg;
  };

  const waves = (async () => {
    for (const [w, delayMs] of [['B', WAVE_GAP_MS], ['C', 2 * WAVE_GAP_MS]]) {
      const wait = tStart + delayMs - Date.now();
      if (wait > 0) await sleep(wait);
      for (const s of byWave[w]) await startOne(s);
      log(`enqueued wave ${w} (${byWave[w].length} starts)`);
    }
  })().catch((e) => fail(`wave start failed: ${e.message}`));

  const followups = plan.followups.map((f) =>
    (async () => {
      for (;;) {
        if (failed) return;
        if (Date.now() > deadline) return fail(`timeout waiting for ${f.id} to be waiting on ${f.waitFor} (follow-up: ${f.what})`);
        const o = await observe(client, f.id).catch(() => null);
        if (o && o.exists && o.status === 'Running' && o.waiting_on === f.waitFor) break;
        await sleep(POLL_MS * 2);
      }
      await f.action(client);
      f.done = true;
    })().catch((e) => fail(`follow-up on ${f.id} failed: ${e.message}`)),
  );

  const expectedIds = [...plan.expect.keys()];
  const poisonIds = new Set(plan.poison.map((p) => p.id));
  const mainIds = expectedIds.filter((id) => !poisonIds.has(id));
  const presentIds = mainIds.filter((id) => !plan.expect.get(id).absent);
  // Duroxide's SQLite getQueueDepths counts every unlocked row (pending timers included); its PostgreSQL one
  // counts only rows visible now, so the pending timers of sleeping instances are not in it.
  const expectedDepths = plan.expectDepths ? { orchestratorQueue: pg ? 0 : plan.expectDepths.orchestratorQueue, workerQueue: plan.expectDepths.workerQueue } : {
    orchestratorQueue: pg ? 0 : expectedIds.filter((id) => plan.expect.get(id).waiting_on === 'timer').length,
    workerQueue: expectedIds.filter((id) => String(plan.expect.get(id).waiting_on).startsWith('activity:')).length,
  };
  let lastReport = {};
  const checkAll = async (ids) => {
    const res = await mapLimit(ids, POLL_CONCURRENCY, async (id) => {
      const o = await observe(client, id).catch((e) => ({ exists: false, error: e.message }));
      return [id, o, mismatches(plan.expect.get(id), o)];
    });
    return res;
  };

  // Wait until every instance matches, the follow-ups ran and the queues are quiescent; then re-check all.
  let pending = new Set(mainIds);
  let settled = false;
  while (!settled) {
    if (failed) break;
    if (Date.now() > deadline) {
      fail('global timeout');
      break;
    }
    if (pending.size > 0) {
      const res = await checkAll([...pending]);
      lastReport = {};
      for (const [id, , mm] of res) {
        if (mm.length === 0) pending.delete(id);
        else lastReport[id] = mm;
      }
      if (pending.size > 0) {
        await sleep(POLL_MS);
        continue;
      }
    }
    await waves;
    if (!plan.followups.every((f) => f.done)) {
      await sleep(POLL_MS);
      continue;
    }
    const depths = await client.getQueueDepths();
    const all = await client.listAllInstances();
    const unexpected = all.filter((id) => !plan.expect.has(id));
    if (unexpected.length) {
      fail(`unexpected instances in store: ${unexpected.slice(0, 20).join(', ')}`);
      break;
    }
    if (depths.orchestratorQueue !== expectedDepths.orchestratorQueue || depths.workerQueue !== expectedDepths.workerQueue || all.length !== presentIds.length) {
      lastReport = { _queues: [`depths ${JSON.stringify(depths)} expected ${JSON.stringify(expectedDepths)}; instances ${all.length}/${presentIds.length}`] };
      await sleep(POLL_MS);
      continue;
    }
    // full re-verification pass (nothing may have moved on)
    const res = await checkAll(mainIds);
    const bad = res.filter(([, , mm]) => mm.length > 0);
    if (bad.length === 0) settled = true;
    else pending = new Set(bad.map(([id]) => id));
  }
  await Promise.all(followups);

  log(settled ? 'all instances stable; shutting runtime down' : `NOT settled: ${failed}`);
  await runtime.shutdown(500);
  if (settled && plan.poison.length) {
    try {
      await runPoisonPhase(plan, abs, client, log, deadline);
    } catch (e) {
      settled = false;
      failed = `poison phase: ${e.message}`;
    }
  }
  if (!settled) {
    const lines = Object.entries(lastReport)
      .slice(0, 40)
      .map(([id, mm]) => `  ${JSON.stringify(id)}: ${mm.join('; ')}`);
    throw new Error(
      `scenarios did not reach their expected state (${failed}) after ${Date.now() - t0} ms.\n` +
        `${Object.keys(lastReport).length} instance(s) still differ:\n${lines.join('\n')}`,
    );
  }

  // Final assertion with the runtime stopped: these are the values written to the manifest.
  const final = await checkAll(expectedIds);
  const bad = final.filter(([, , mm]) => mm.length > 0);
  if (bad.length) {
    throw new Error(`state changed during shutdown:\n${bad.map(([id, , mm]) => `  ${id}: ${mm.join('; ')}`).join('\n')}`);
  }
  // tree membership via getInstanceTree for every root
  const childrenOf = new Map();
  for (const [id, o] of final) {
    if (!o.exists) continue;
    if (o.parent !== null) {
      if (!childrenOf.has(o.parent)) childrenOf.set(o.parent, []);
      childrenOf.get(o.parent).push(id);
    }
  }
  for (const [id, o] of final) {
    if (!o.exists || o.parent !== null) continue;
    const tree = await client.getInstanceTree(id);
    const expectTree = [];
    const walk = (x) => {
      expectTree.push(x);
      for (const c of childrenOf.get(x) || []) walk(c);
    };
    walk(id);
    if (JSON.stringify([...tree.allIds].sort()) !== JSON.stringify(expectTree.sort())) {
      throw new Error(`getInstanceTree(${id}) = ${JSON.stringify(tree.allIds)}, expected members ${JSON.stringify(expectTree)}`);
    }
  }
  const depths = await client.getQueueDepths();
  const metrics = await client.getSystemMetrics();
  const checkpoint = pg ? 'n/a (PostgreSQL)' : common.checkpointWal(abs);
  log(`WAL checkpoint: ${checkpoint}`);

  const instances = {};
  const counts = {};
  for (const [id, o] of final) {
    const exp = plan.expect.get(id);
    if (!o.exists) {
      // an instance the runtime never created (its start is still queued): described from the plan
      const start = plan.starts.find((s) => s.id === id);
      instances[id] = { scenario: exp.scenario, name: exp.name, absent: true, start: start ? { wave: start.wave, version: start.version || null, input: start.input } : null };
      continue;
    }
    counts[o.status] = (counts[o.status] || 0) + 1;
    const m = {
      scenario: exp.scenario,
      name: o.name,
      version: o.version,
      status: o.status,
    };
    if (o.status === 'Failed') {
      m.failure_kind = o.failure_kind;
      m.failure_detail = o.failure_detail;
    }
    m.executions = o.executions;
    m.execution_statuses = o.execution_statuses;
    if (o.status === 'Running') m.waiting_on = o.waiting_on;
    if (o.timer_fire_at_ms !== undefined) m.timer_fire_at_ms = o.timer_fire_at_ms;
    m.parent = o.parent;
    m.children = (childrenOf.get(id) || []).slice().sort();
    if (o.output !== null) {
      if (o.output.length <= INLINE_OUTPUT_LIMIT) m.output = o.output;
      m.output_length = Buffer.byteLength(o.output, 'utf8');
      if (o.output.length > INLINE_OUTPUT_LIMIT) m.output_sha256 = sha256(o.output);
    }
    if (exp.output_prefix !== undefined) m.output_prefix = exp.output_prefix;
    if (o.custom_status !== null) {
      m.custom_status = o.custom_status;
      m.custom_status_version = o.custom_status_version;
    }
    if (Object.keys(o.kv || {}).length) m.kv = sortKeys(o.kv);
    m.external_events = o.external_events;
    m.history_events = o.history_events;
    const start = plan.starts.find((s) => s.id === id);
    if (start) {
      m.start = { wave: start.wave, version: start.version || null, input_length: Buffer.byteLength(start.input, 'utf8') };
      if (start.input.length <= INLINE_OUTPUT_LIMIT) m.start.input = start.input;
    }
    const fus = plan.followups.filter((f) => f.id === id);
    if (fus.length) m.followups = fus.map((f) => ({ when: f.waitFor, action: f.what }));
    const poison = plan.poison.find((x) => x.id === id);
    if (poison) m.poison = { fetches: poison.fetches, runtime_kills: poison.kills };
    instances[id] = m;
  }

  const manifest = {
    format: 1,
    generator: 'tests/harness/scenarios.js',
    set,
    runtime: { package: 'duroxide-linux-x64-gnu', version: require('duroxide-linux-x64-gnu/package.json').version },
    db_path: pg ? common.storeName(abs) : abs,
    provider: pg ? 'postgres' : 'sqlite',
    created_at_ms: Date.now(),
    duration_ms: Date.now() - t0,
    demo,
    seed: demo > 0 ? seed : null,
    instance_count: expectedIds.filter((id) => !plan.expect.get(id).absent).length,
    counts,
    queue_depths: depths,
    wal_checkpoint: checkpoint,
    system_metrics: metrics,
    instances,
  };
  fs.writeFileSync(manifestPath, `${safeStringify(manifest, 2)}\n`);
  log(`wrote ${manifestPath} (${manifest.instance_count} instances: ${JSON.stringify(counts)}) in ${Date.now() - t0} ms`);
  process.stdout.write(`${safeStringify({ db: pg ? common.storeName(abs) : abs, manifest: manifestPath, instances: manifest.instance_count, counts, duration_ms: Date.now() - t0 })}\n`);
  return 0;
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'create') return create(rest);
  return usage();
}

if (require.main === module) common.runMain(main);

module.exports = { jsonStringOfBytes, mulberry32 };
