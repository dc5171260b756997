'use strict';
// Every orchestration and activity used by scenarios.js and live.js.
// Orchestration code must be deterministic: it is replayed from scratch on every turn.
// Conventions: inputs/outputs are JSON text; raw() returns a string verbatim (not JSON-encoded).

const { Driver, raw } = require('./driver');

// ---------------------------------------------------------------------------------------------------
// Activities (run on the worker dispatcher; may do anything, results are recorded in history)
// ---------------------------------------------------------------------------------------------------

function checksum(text) {
  // Deterministic, cheap string hash (FNV-1a 32 bit) used to derive stable fake ids.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

const flakyCalls = new Map();

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const activities = {
  // arithmetic / formatting pipeline used by Sequence
  Add: async (x) => Number(x.value !== undefined ? x.value : x) + Number(x.add !== undefined ? x.add : 1),
  Multiply: async (x) => Number(x.value) * Number(x.by),
  FormatResult: async (x) => `result=${x}`,
  // echo / identity
  Echo: async (x) => x,
  EchoRaw: async (_x, actx) => raw(actx.rawInput),
  Greet: async (name) => `Hello, ${name}!`,
  // always fails with an application error
  Fail: async (x) => {
    throw new Error(`activity failure: ${x && x.reason ? x.reason : 'boom'}`);
  },
  // served only by workers with the 'gpu' tag (none in this harness: default workerTagFilter = defaultOnly)
  GpuRender: async (x) => ({ rendered: x }),
  // slow activity that honours cancellation (for live tests: cancel an instance while it runs)
  SlowWork: async (x, actx) => {
    const ms = Number((x && x.ms) || 1000);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (actx.isCancelled()) return { cancelled: true };
      await delay(Math.min(50, until - Date.now()));
    }
    return { sleptMs: ms };
  },
  // never finishes by itself: waits (polling isCancelled) for input.ms (default 10 min). The poison
  // scenarios run it in runtimes that are SIGKILLed while it runs, so its queue row is fetched again
  // and again (attempt_count) until the runtime poisons it.
  Hang: async (x, actx) => {
    const until = Date.now() + Number((x && x.ms) || 600000);
    while (Date.now() < until) {
      if (actx.isCancelled()) return { cancelled: true };
      await delay(50);
    }
    return { hungMs: Number((x && x.ms) || 600000) };
  },
  // fails the first input.failures calls for the same input.key (process-local counter), then succeeds
  Flaky: async (x) => {
    const key = String((x && x.key) || 'flaky');
    const n = (flakyCalls.get(key) || 0) + 1;
    flakyCalls.set(key, n);
    if (n <= Number((x && x.failures) || 0)) throw new Error(`flaky failure ${n} of ${key}`);
    return { calls: n };
  },
  // demo domain
  ValidateOrder: async (o) => {
    if (!o || !o.orderId) throw new Error('invalid order: missing orderId');
    return { orderId: o.orderId, valid: true, lines: o.lines || 1 };
  },
  ChargeCard: async (p) => {
    if (p.decline) throw new Error(`card declined for ${p.orderId} (amount ${p.amount})`);
    return { txn: `txn-${checksum(String(p.orderId))}`, amount: p.amount };
  },
  ReserveCarrier: async (s) => ({ carrier: ['DHL', 'UPS', 'FedEx', 'PostNL'][parseInt(checksum(String(s.orderId)), 16) % 4] }),
  PrintLabel: async (s) => ({ tracking: `TRK${checksum(`label:${s.orderId}`).toUpperCase()}` }),
};

// ---------------------------------------------------------------------------------------------------
// Orchestrations
// ---------------------------------------------------------------------------------------------------

// Nondeterministic on purpose: the first run yields an activity, every replay yields a timer instead.
// Keyed by instance id so several instances can use it; module level = survives across turns.
const nondeterminismRuns = new Map();

const orchestrations = {
  /** 3 activities in sequence: Add, Multiply, FormatResult. input {value}. */
  Sequence: function* (ctx, input) {
    const v = input && typeof input === 'object' && input.value !== undefined ? input.value : 1;
    const a = yield ctx.activity('Add', { value: v, add: 1 });
    const b = yield ctx.activity('Multiply', { value: a, by: 10 });
    const c = yield ctx.activity('FormatResult', b);
    return { input: v, added: a, multiplied: b, formatted: c };
  },

  /** Returns its input (JSON) unchanged, after one Echo activity round-trip. */
  Echo: function* (ctx, input) {
    const out = yield ctx.activity('Echo', input === undefined ? null : input);
    return out;
  },

  /** Returns its raw input string byte for byte (no activity, so 1 MiB stays a single history copy). */
  EchoRaw: function* (ctx) {
    return raw(ctx.rawInput);
  },

  /** Greets; completes quickly. Used for listing material. */
  Greeter: function* (ctx, input) {
    return yield ctx.activity('Greet', input && input.name ? input.name : 'world');
  },

  /** Calls an activity that throws; does not catch -> Failed (application). */
  FailByActivity: function* (ctx, input) {
    yield ctx.activity('Add', { value: 1, add: 1 });
    yield ctx.activity('Fail', { reason: (input && input.reason) || 'card declined' });
    return 'unreachable';
  },

  /** Catches an activity failure and completes with the error text. */
  CatchActivityFailure: function* (ctx) {
    try {
      yield ctx.activity('Fail', { reason: 'expected' });
      return { caught: null };
    } catch (err) {
      return { caught: err.message };
    }
  },

  /** Throws from orchestration code itself -> Failed (application, OrchestrationFailed). */
  ThrowingOrchestration: function* (ctx, input) {
    yield ctx.activity('Add', { value: 1, add: 1 });
    throw new Error(`validation failed: ${(input && input.why) || 'amount must be positive'}`);
  },

  /** Child that fails by throwing. */
  FailingChild: function* (ctx, input) {
    throw new Error(`child failed: ${(input && input.why) || 'inventory unavailable'}`);
  },

  /** Parent of FailingChild; does not catch -> fails with the propagated SubOrchestrationFailed. */
  ParentOfFailingChild: function* (ctx, input) {
    const r = yield ctx.subOrchestration('FailingChild', input || {});
    return { child: r };
  },

  /** Waits for event 'Approve' (or input.event); completes with {approved: <event data>}. */
  WaitApprove: function* (ctx, input) {
    const name = (input && input.event) || 'Approve';
    const data = yield ctx.waitEvent(name);
    return { approved: data };
  },

  /** Parent whose only child (auto id <parent>::sub::2) waits for 'Approve'. */
  ParentWithWaitingChild: function* (ctx, input) {
    const r = yield ctx.subOrchestration('WaitApprove', input || {});
    return { child: r };
  },

  /** Sleeps on a short timer FIRST, then waits for event 'Approve' (early-raise scenario). */
  EarlyEventWaiter: function* (ctx, input) {
    yield ctx.timer((input && input.sleepMs) || 1000);
    const data = yield ctx.waitEvent('Approve');
    return { approved: data };
  },

  /** Dequeues input.count messages from queue input.queue (default 'inbox'), returns them. */
  QueueWaiter: function* (ctx, input) {
    const queue = (input && input.queue) || 'inbox';
    const count = (input && input.count) || 1;
    const got = [];
    for (let i = 0; i < count; i++) got.push(yield ctx.dequeueEvent(queue));
    return { received: got };
  },

  /** Sleeps input.ms (default 1 h) then completes. */
  Sleeper: function* (ctx, input) {
    const ms = (input && input.ms) || 3600000;
    yield ctx.timer(ms);
    return { sleptMs: ms };
  },

  /** Activity with a tag (default 'gpu') that no worker serves (default workerTagFilter = defaultOnly). */
  TaggedActivity: function* (ctx, input) {
    const tag = (input && input.tag) || 'gpu';
    const r = yield ctx.activity('GpuRender', { frame: (input && input.frame) || 1 }, { tag });
    return r;
  },

  /**
   * Busy-waits input.ms (default 8000) inside its turn, then sleeps 10 ms: while the turn runs the
   * runtime holds the instance lock (and node is blocked), so a kill meanwhile leaves the lock behind.
   */
  SlowTurn: function* (ctx, input) {
    const until = Date.now() + ((input && input.ms) || 8000);
    while (Date.now() < until) {
      /* busy */
    }
    yield ctx.timer(10);
    return 'done';
  },

  /** Runs SlowWork (input.ms) then completes. */
  SlowActivity: function* (ctx, input) {
    return yield ctx.activity('SlowWork', { ms: (input && input.ms) || 1000 });
  },

  /**
   * input {n, max, wait}: continue-as-new until n == max-1 (so `max` executions in total); the last
   * execution completes ({finalN}) or, with wait=true, waits for 'Approve'.
   */
  ContinueLoop: function* (ctx, input) {
    const st = Object.assign({ n: 0, max: 4, wait: false }, input || {});
    yield ctx.activity('Add', { value: st.n, add: 1 });
    if (st.n < st.max - 1) {
      yield ctx.continueAsNew(Object.assign({}, st, { n: st.n + 1 }));
      return null; // output of a continued-as-new execution is ignored
    }
    if (st.wait) {
      const data = yield ctx.waitEvent('Approve');
      return { finalN: st.n, approved: data };
    }
    return { finalN: st.n };
  },

  /**
   * Sub-orchestration tree node. input {shape:[fanout per level...], level, leaf:'complete'|'wait',
   * explicit: {<level>: {index, id}}}. Children are started in parallel (join); child `index` at a level
   * listed in `explicit` gets an explicit instance id, the others get auto ids <parent>::sub::<eventId>.
   * Output: number of nodes in the subtree.
   */
  TreeNode: function* (ctx, input) {
    const st = Object.assign({ shape: [], level: 0, leaf: 'complete' }, input || {});
    const fanout = st.shape[st.level] || 0;
    if (fanout === 0) {
      if (st.leaf === 'wait') {
        const data = yield ctx.waitEvent('Approve');
        return { nodes: 1, approved: data };
      }
      yield ctx.activity('Add', { value: st.level, add: 1 });
      return { nodes: 1 };
    }
    const tasks = [];
    for (let i = 0; i < fanout; i++) {
      const childInput = { shape: st.shape, level: st.level + 1, leaf: st.leaf };
      const ex = st.explicit && st.explicit[String(st.level)];
      if (ex && ex.index === i) tasks.push(ctx.subOrchestration('TreeNode', childInput, { instanceId: ex.id }));
      else tasks.push(ctx.subOrchestration('TreeNode', childInput));
    }
    const results = yield ctx.join(tasks);
    let nodes = 1;
    for (const r of results) {
      if (r.err !== undefined) throw new Error(`child failed: ${JSON.stringify(r.err)}`);
      const v = typeof r.ok === 'string' ? JSON.parse(r.ok) : r.ok;
      nodes += v.nodes;
    }
    return { nodes };
  },

  /** Fire-and-forget start of input.child (orchestration input.name, default Sequence), then completes. */
  DetachedStarter: function* (ctx, input) {
    const childId = (input && input.childId) || `${ctx.instanceId}-detached`;
    yield ctx.startOrchestration((input && input.name) || 'Sequence', childId, (input && input.childInput) || { value: 7 });
    return { started: childId };
  },

  /** Sets custom status then waits for 'Approve'. */
  CustomStatusWaiter: function* (ctx, input) {
    ctx.setCustomStatus((input && input.status) || '{"phase":"review"}');
    const data = yield ctx.waitEvent('Approve');
    ctx.setCustomStatus('{"phase":"approved"}');
    return { approved: data };
  },

  /** Sets custom status, runs an activity, sets it again and completes. */
  CustomStatusDone: function* (ctx) {
    ctx.setCustomStatus('{"phase":"processing"}');
    const r = yield ctx.activity('Add', { value: 41, add: 1 });
    ctx.setCustomStatus('{"phase":"done"}');
    return { answer: r };
  },

  /** Version 1.0.0 (registered via registerOrchestration) */
  Versioned: function* (ctx) {
    return { version: ctx.orchestrationVersion, impl: 'v1' };
  },

  Nondeterministic: function* (ctx) {
    const run = (nondeterminismRuns.get(ctx.instanceId) || 0) + 1;
    nondeterminismRuns.set(ctx.instanceId, run);
    if (run === 1) yield ctx.activity('Add', { value: 1, add: 1 });
    else yield ctx.timer(10);
    return { run };
  },

  /** Records KV values; input.wait => then waits for 'Approve' (values stay in kv_delta while running). */
  KvRecorder: function* (ctx, input) {
    ctx.setValue('color', 'blue');
    ctx.setValue('count', '3');
    const r = yield ctx.activity('Add', { value: 2, add: 1 });
    ctx.setValue('count', String(r));
    ctx.setValue('temp', 'x');
    ctx.clearValue('temp');
    if (input && input.wait) {
      const data = yield ctx.waitEvent('Approve');
      ctx.setValue('approved', JSON.stringify(data));
      return { approved: data };
    }
    return { count: r };
  },

  /** Waits for event 'Payload' and returns its length (for big event payloads). */
  PayloadWaiter: function* (ctx) {
    yield ctx.waitEvent('Payload');
    return { length: ctx.lastRawResult.length };
  },

  // ---- history shapes (scenarios.js --set shapes) ------------------------------------------------
  /** select(timer(timerMs), waitEvent(event)): {winner:'timer'} or {winner:'event', data}. */
  RaceTimerEvent: function* (ctx, input) {
    const st = Object.assign({ timerMs: 200, event: 'Go' }, input || {});
    const r = yield ctx.select(ctx.timer(st.timerMs), ctx.waitEvent(st.event));
    return r.index === 0 ? { winner: 'timer' } : { winner: 'event', data: r.value };
  },

  /** Approval with a timeout: select(waitEvent('Approve'), timer(timeoutMs)). */
  ApprovalWithTimeout: function* (ctx, input) {
    const st = Object.assign({ timeoutMs: 3600000 }, input || {});
    ctx.setCustomStatus(JSON.stringify({ phase: 'awaiting-approval' }));
    const r = yield ctx.select(ctx.waitEvent('Approve'), ctx.timer(st.timeoutMs));
    ctx.setCustomStatus(JSON.stringify({ phase: r.index === 0 ? 'approved' : 'timed-out' }));
    return r.index === 0 ? { approved: r.value } : { timedOut: true };
  },

  /** select(activity SlowWork(activityMs), timer(timerMs)): the timer wins, the activity is cancelled. */
  RaceActivity: function* (ctx, input) {
    const st = Object.assign({ activityMs: 60000, timerMs: 300 }, input || {});
    const r = yield ctx.select(ctx.activity('SlowWork', { ms: st.activityMs }), ctx.timer(st.timerMs));
    return { winner: r.index === 0 ? 'activity' : 'timer' };
  },

  /** select(subOrchestration(WaitApprove), timer(timerMs)): the timer wins, the child is cancelled. */
  RaceChild: function* (ctx, input) {
    const st = Object.assign({ timerMs: 300 }, input || {});
    const r = yield ctx.select(ctx.subOrchestration('WaitApprove', null), ctx.timer(st.timerMs));
    return { winner: r.index === 0 ? 'child' : 'timer' };
  },

  /** select(dequeueEvent(queue), timer(timerMs)): the timer wins, the queue subscription is cancelled. */
  RaceQueue: function* (ctx, input) {
    const st = Object.assign({ timerMs: 300, queue: 'inbox' }, input || {});
    const r = yield ctx.select(ctx.dequeueEvent(st.queue), ctx.timer(st.timerMs));
    return { winner: r.index === 0 ? 'queue' : 'timer' };
  },

  /** System calls the runtime records as activities: newGuid, utcNow, getValueFromInstance. */
  Syscalls: function* (ctx, input) {
    const guid = yield ctx.newGuid();
    const now = yield ctx.utcNow();
    const st = Object.assign({ from: null, key: 'color' }, input || {});
    const kv = st.from ? yield ctx.getValueFromInstance(st.from, st.key) : null;
    yield ctx.activity('Add', { value: 1, add: 1 });
    return { guidLength: String(guid).length, nowIsNumber: typeof now === 'number' && now > 0, kv };
  },

  /**
   * Continue-as-new with queue messages carried over: execution 1 dequeues one 'inbox' message and
   * continues as new while the others are still undelivered; execution 2 dequeues input.rest more.
   */
  CarryForward: function* (ctx, input) {
    const st = Object.assign({ gen: 0, rest: 2, got: [] }, input || {});
    ctx.setCustomStatus(JSON.stringify({ gen: st.gen }));
    if (st.gen === 0) {
      const m = yield ctx.dequeueEvent('inbox');
      yield ctx.continueAsNew({ gen: 1, rest: st.rest, got: [m] });
      return null;
    }
    const got = st.got.slice();
    for (let i = 0; i < st.rest; i++) got.push(yield ctx.dequeueEvent('inbox'));
    return { received: got };
  },

  /** KV: set two values, then clear them all (KeyValuesCleared), set one more. */
  KvClearAll: function* (ctx) {
    ctx.setValue('a', '1');
    ctx.setValue('b', '2');
    yield ctx.activity('Add', { value: 1, add: 1 });
    ctx.clearAllValues();
    ctx.setValue('after', 'yes');
    return { cleared: true };
  },

  /** An activity on a session and one with a retry policy (Flaky fails input.failures times first). */
  SessionAndRetry: function* (ctx, input) {
    const st = Object.assign({ failures: 2 }, input || {});
    const s = yield ctx.activity('Echo', { on: 'session' }, { sessionId: `session-${ctx.instanceId}` });
    const r = yield ctx.activityWithRetry('Flaky', { key: ctx.instanceId, failures: st.failures }, { maxAttempts: 5 });
    return { session: s, flaky: r };
  },

  /**
   * Still running after its races: an activity, a sub-orchestration, an event wait and a queue wait
   * lose to timers (all cancelled), a system call runs, then it waits for 'Approve': what a running
   * instance with cancelled work and system calls in its history looks like.
   */
  RacesThenWait: function* (ctx) {
    const a = yield ctx.select(ctx.activity('SlowWork', { ms: 60000 }), ctx.timer(300));
    const c = yield ctx.select(ctx.subOrchestration('WaitApprove', null), ctx.timer(300));
    // an event wait and a queue wait that lose to timers (their subscriptions are cancelled)
    yield ctx.select(ctx.waitEvent('Go'), ctx.timer(300));
    yield ctx.select(ctx.dequeueEvent('inbox'), ctx.timer(300));
    const guid = yield ctx.newGuid();
    const data = yield ctx.waitEvent('Approve');
    return { activity: a.index, child: c.index, guidLength: String(guid).length, approved: data };
  },

  /** Dequeues one message from 'inbox', then waits for 'Approve' (later messages stay buffered). */
  DequeueThenWait: function* (ctx) {
    const m = yield ctx.dequeueEvent('inbox');
    const data = yield ctx.waitEvent('Approve');
    return { first: m, approved: data };
  },

  /** Waits on activity Hang (the poison scenarios). */
  HangActivity: function* (ctx, input) {
    return yield ctx.activity('Hang', input || {});
  },

  // ---- demo domain -----------------------------------------------------------------------------
  /**
   * input {orderId, amount, plan}: plan in complete | decline | outofstock | approval | cancel | sleep |
   * pickup. ValidateOrder -> Payment child -> (approval wait | sleep) -> Shipment child.
   */
  Order: function* (ctx, o) {
    ctx.setCustomStatus(JSON.stringify({ phase: 'validating', orderId: o.orderId }));
    yield ctx.activity('ValidateOrder', o);
    if (o.plan === 'outofstock') throw new Error(`out of stock: ${o.sku || 'SKU-1'} for ${o.orderId}`);
    ctx.setCustomStatus(JSON.stringify({ phase: 'payment', orderId: o.orderId }));
    const pay = yield ctx.subOrchestration('Payment', { orderId: o.orderId, amount: o.amount, decline: o.plan === 'decline' });
    if (o.plan === 'approval' || o.plan === 'cancel') {
      ctx.setCustomStatus(JSON.stringify({ phase: 'awaiting-approval', orderId: o.orderId }));
      yield ctx.waitEvent('ManagerApproval');
    }
    if (o.plan === 'sleep') {
      ctx.setCustomStatus(JSON.stringify({ phase: 'waiting-for-delivery-window', orderId: o.orderId }));
      yield ctx.timer(o.sleepMs || 2 * 3600 * 1000);
    }
    ctx.setCustomStatus(JSON.stringify({ phase: 'shipping', orderId: o.orderId }));
    const ship = yield ctx.subOrchestration('Shipment', { orderId: o.orderId, waitPickup: o.plan === 'pickup' });
    ctx.setCustomStatus(JSON.stringify({ phase: 'done', orderId: o.orderId }));
    return { orderId: o.orderId, txn: pay.txn, tracking: ship.tracking };
  },

  /** input {orderId, amount, decline} */
  Payment: function* (ctx, p) {
    const r = yield ctx.activity('ChargeCard', p);
    return r;
  },

  /** input {orderId, waitPickup} */
  Shipment: function* (ctx, s) {
    const c = yield ctx.activity('ReserveCarrier', s);
    if (s.waitPickup) yield ctx.waitEvent('PickedUp');
    const l = yield ctx.activity('PrintLabel', s);
    return { carrier: c.carrier, tracking: l.tracking };
  },
};

/** Version 2.0.0 of Versioned (registered with registerOrchestrationVersioned). */
const versionedOrchestrations = [
  {
    name: 'Versioned',
    version: '2.0.0',
    fn: function* (ctx) {
      return { version: ctx.orchestrationVersion, impl: 'v2' };
    },
  },
];

/** Builds a Driver holding every orchestration/activity of the harness. */
function buildDriver() {
  const d = new Driver();
  for (const [name, fn] of Object.entries(orchestrations)) d.registerOrchestration(name, fn);
  for (const { name, version, fn } of versionedOrchestrations) d.registerOrchestration(name, fn, version);
  for (const [name, fn] of Object.entries(activities)) d.registerActivity(name, fn);
  return d;
}

/** Registers everything on a native JsRuntime (call before runtime.start()); returns the driver. */
function registerAll(runtime) {
  const d = buildDriver();
  d.install(runtime);
  return d;
}

module.exports = { registerAll, buildDriver, orchestrations, activities, versionedOrchestrations, checksum };
