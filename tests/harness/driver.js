'use strict';
// Deterministic generator driver over the native duroxide JsRuntime callback protocol.
//
// Native protocol (duroxide-linux-x64-gnu 0.1.29):
//   runtime.setGeneratorDriver(create, next, dispose)
//     create(payload)  payload = {"ctxInfo":{instanceId,executionId,orchestrationName,orchestrationVersion},"input":"<raw>"}
//     next(payload)    payload = {"generatorId":N,"result":"<raw string>","isError":bool}
//     dispose(payload) payload = "<generator id>"                       -> must return a string ("ok")
//   create/next return JSON text:
//     {"status":"yielded","generatorId":N,"task":{...}} | {"status":"completed","output":"<raw>"} |
//     {"status":"error","message":"..."}
//   The callbacks are synchronous and a throw aborts the whole node process, so every path is wrapped.
//   The orchestration is replayed from scratch on every turn (a fresh create per turn): orchestration
//   code must be deterministic (no Date.now(), Math.random(), I/O, ... outside of activities).
//
// Conventions used by this harness:
//   * Inputs/outputs/event data are JSON text. Values handed to helpers are JSON.stringify'd; values
//     received (orchestration input, task results) are JSON.parse'd when they parse, else kept as the raw
//     string (so the raw empty string "" stays "").
//   * raw(s) bypasses the JSON encoding: the string s is sent/returned byte for byte.
//   * A failed activity / sub-orchestration is thrown into the generator as a TaskError (gen.throw), so the
//     orchestration can catch it or let it fail the orchestration (status "error" -> execution Failed).

const native = require('duroxide-linux-x64-gnu');

class Raw {
  constructor(text) {
    this.text = String(text);
  }
}

function raw(text) {
  return new Raw(text);
}

function encode(value) {
  if (value instanceof Raw) return value.text;
  return JSON.stringify(value === undefined ? null : value);
}

function decode(text) {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

/** Error thrown into a generator when a yielded task failed. `.raw` is the runtime's error string. */
class TaskError extends Error {
  constructor(rawMessage, taskType) {
    super(rawMessage);
    this.name = 'TaskError';
    this.raw = rawMessage;
    this.taskType = taskType;
  }
}

function describeError(err) {
  if (err === undefined || err === null) return String(err);
  if (typeof err === 'string') return err;
  if (err instanceof Error) return err.message !== undefined ? String(err.message) : String(err);
  try {
    return JSON.stringify(err);
  } catch (_) {
    return String(err);
  }
}

/** The `ctx` handed to orchestration generators. Task helpers only BUILD descriptors; `yield` them. */
class OrchestrationContext {
  constructor(info, rawInput) {
    this.instanceId = info.instanceId;
    this.executionId = info.executionId;
    this.orchestrationName = info.orchestrationName;
    this.orchestrationVersion = info.orchestrationVersion;
    this.rawInput = rawInput;
    this.lastRawResult = undefined;
  }

  // ---- task descriptors -------------------------------------------------------------------------
  activity(name, input, opts) {
    const t = { type: 'activity', name, input: encode(input) };
    if (opts && opts.sessionId !== undefined) t.sessionId = opts.sessionId;
    if (opts && opts.tag !== undefined) t.tag = opts.tag;
    return t;
  }
  activityWithTag(name, input, tag) {
    return this.activity(name, input, { tag });
  }
  activityOnSession(name, input, sessionId) {
    return this.activity(name, input, { sessionId });
  }
  activityWithRetry(name, input, retry, opts) {
    const t = {
      type: 'activityWithRetry',
      name,
      input: encode(input),
      retry: {
        maxAttempts: retry.maxAttempts,
        timeoutMs: retry.timeoutMs === undefined ? null : retry.timeoutMs,
        totalTimeoutMs: retry.totalTimeoutMs === undefined ? null : retry.totalTimeoutMs,
        backoff: retry.backoff === undefined ? null : retry.backoff,
      },
    };
    if (opts && opts.sessionId !== undefined) t.sessionId = opts.sessionId;
    return t;
  }
  timer(delayMs) {
    return { type: 'timer', delayMs };
  }
  waitEvent(name) {
    return { type: 'waitEvent', name };
  }
  dequeueEvent(queueName) {
    return { type: 'dequeueEvent', queueName };
  }
  subOrchestration(name, input, opts) {
    const o = opts || {};
    if (o.version !== undefined && o.instanceId !== undefined)
      return { type: 'subOrchestrationVersionedWithId', name, version: o.version, instanceId: o.instanceId, input: encode(input) };
    if (o.version !== undefined) return { type: 'subOrchestrationVersioned', name, version: o.version, input: encode(input) };
    if (o.instanceId !== undefined) return { type: 'subOrchestrationWithId', name, instanceId: o.instanceId, input: encode(input) };
    return { type: 'subOrchestration', name, input: encode(input) };
  }
  subOrchestrationWithId(name, instanceId, input) {
    return this.subOrchestration(name, input, { instanceId });
  }
  /** Detached (fire-and-forget) start of an independent root orchestration. Yields null. */
  startOrchestration(name, instanceId, input, version) {
    if (version !== undefined) return { type: 'orchestrationVersioned', name, version, instanceId, input: encode(input) };
    return { type: 'orchestration', name, instanceId, input: encode(input) };
  }
  continueAsNew(input, version) {
    if (version !== undefined) return { type: 'continueAsNewVersioned', input: encode(input), version };
    return { type: 'continueAsNew', input: encode(input) };
  }
  /** join: yields an array of {ok: value} | {err: value} (values already JSON-parsed by the runtime). */
  join(tasks) {
    return { type: 'join', tasks };
  }
  /** select: exactly two tasks; yields {index: 0|1, value}. */
  select(a, b) {
    return { type: 'select', tasks: [a, b] };
  }
  newGuid() {
    return { type: 'newGuid' };
  }
  utcNow() {
    return { type: 'utcNow' };
  }
  getValueFromInstance(instanceId, key) {
    return { type: 'getValueFromInstance', instanceId, key };
  }

  // ---- synchronous, replay-safe side effects (valid only while this generator is being driven) --
  setCustomStatus(status) {
    native.orchestrationSetCustomStatus(this.instanceId, typeof status === 'string' ? status : JSON.stringify(status));
  }
  resetCustomStatus() {
    native.orchestrationResetCustomStatus(this.instanceId);
  }
  getCustomStatus() {
    return native.orchestrationGetCustomStatus(this.instanceId);
  }
  setValue(key, value) {
    native.orchestrationSetValue(this.instanceId, key, typeof value === 'string' ? value : JSON.stringify(value));
  }
  getValue(key) {
    return native.orchestrationGetValue(this.instanceId, key);
  }
  clearValue(key) {
    native.orchestrationClearValue(this.instanceId, key);
  }
  clearAllValues() {
    native.orchestrationClearAllValues(this.instanceId);
  }
  getAllValues() {
    return native.orchestrationGetKvAllValues(this.instanceId);
  }
  trace(level, message) {
    native.orchestrationTraceLog(this.instanceId, level, message);
  }
}

function decodeResult(taskType, text) {
  switch (taskType) {
    case 'timer':
    case 'orchestration':
    case 'orchestrationVersioned':
    case 'continueAsNew':
    case 'continueAsNewVersioned':
      return null;
    case 'join':
    case 'select':
    case 'newGuid':
    case 'utcNow':
    case 'getValueFromInstance':
      try {
        return JSON.parse(text);
      } catch (_) {
        return text;
      }
    default:
      // activity, activityWithRetry, subOrchestration*, waitEvent, dequeueEvent
      return decode(text);
  }
}

const KNOWN_TASK_TYPES = new Set([
  'activity', 'activityWithRetry', 'timer', 'waitEvent', 'dequeueEvent', 'subOrchestration',
  'subOrchestrationWithId', 'subOrchestrationVersioned', 'subOrchestrationVersionedWithId', 'orchestration',
  'orchestrationVersioned', 'newGuid', 'utcNow', 'continueAsNew', 'continueAsNewVersioned',
  'getValueFromInstance', 'join', 'select',
]);

class Driver {
  constructor() {
    this.orchestrations = new Map(); // key "name" or "name@version" -> generator function
    this.orchestrationVersions = []; // [{name, version}] registered with an explicit version
    this.activities = new Map(); // name -> async fn(input, actx)
    this.generators = new Map(); // generator id -> {gen, ctx, pendingType}
    this.nextId = 1;
    this.stats = { created: 0, errors: 0, completed: 0 };
    this.create = this.create.bind(this);
    this.next = this.next.bind(this);
    this.dispose = this.dispose.bind(this);
  }

  /** Register `function*(ctx, input)` under name (and optionally an explicit version). */
  registerOrchestration(name, genFn, version) {
    if (typeof genFn !== 'function') throw new TypeError(`orchestration ${name}: not a function`);
    if (version === undefined) {
      this.orchestrations.set(name, genFn);
    } else {
      this.orchestrations.set(`${name}@${version}`, genFn);
      this.orchestrationVersions.push({ name, version });
    }
    return this;
  }

  /** Register `async fn(input, actx)`; its (awaited) return value is JSON-encoded unless raw(). */
  registerActivity(name, fn) {
    if (typeof fn !== 'function') throw new TypeError(`activity ${name}: not a function`);
    this.activities.set(name, fn);
    return this;
  }

  /** Wire this driver and every registration into a native JsRuntime (before runtime.start()). */
  install(runtime) {
    runtime.setGeneratorDriver(this.create, this.next, this.dispose);
    for (const key of this.orchestrations.keys()) {
      if (!key.includes('@')) runtime.registerOrchestration(key);
    }
    for (const { name, version } of this.orchestrationVersions) runtime.registerOrchestrationVersioned(name, version);
    for (const [name, fn] of this.activities) runtime.registerActivity(name, wrapActivity(name, fn));
    return runtime;
  }

  lookup(name, version) {
    return this.orchestrations.get(`${name}@${version}`) || this.orchestrations.get(name);
  }

  // ---- native callbacks: synchronous, string in / string out, never throw --------------------------
  create(payloadText) {
    let id = 0;
    try {
      const payload = JSON.parse(payloadText);
      const info = payload.ctxInfo || {};
      const fn = this.lookup(info.orchestrationName, info.orchestrationVersion);
      if (!fn) {
        return failure(`no orchestration registered for '${info.orchestrationName}' version '${info.orchestrationVersion}'`);
      }
      const rawInput = typeof payload.input === 'string' ? payload.input : '';
      const ctx = new OrchestrationContext(info, rawInput);
      const gen = fn(ctx, decode(rawInput));
      if (!gen || typeof gen.next !== 'function' || typeof gen.throw !== 'function') {
        return failure(`orchestration '${info.orchestrationName}' is not a generator function`);
      }
      id = this.nextId++;
      const state = { gen, ctx, pendingType: null };
      this.generators.set(id, state);
      this.stats.created++;
      return this.advance(id, state, () => gen.next());
    } catch (err) {
      if (id) this.generators.delete(id);
      this.stats.errors++;
      return failure(`driver create failed: ${describeError(err)}`);
    }
  }

  next(payloadText) {
    try {
      const payload = JSON.parse(payloadText);
      const id = Number(payload.generatorId);
      const state = this.generators.get(id);
      if (!state) return failure(`driver: unknown generator id ${payload.generatorId}`);
      const text = typeof payload.result === 'string' ? payload.result : String(payload.result);
      state.ctx.lastRawResult = text;
      const taskType = state.pendingType;
      if (payload.isError) {
        return this.advance(id, state, () => state.gen.throw(new TaskError(text, taskType)));
      }
      const value = decodeResult(taskType, text);
      return this.advance(id, state, () => state.gen.next(value));
    } catch (err) {
      this.stats.errors++;
      return failure(`driver next failed: ${describeError(err)}`);
    }
  }

  dispose(payloadText) {
    try {
      this.generators.delete(Number(payloadText));
    } catch (_) {
      /* ignore */
    }
    return 'ok';
  }

  advance(id, state, stepFn) {
    let r;
    try {
      r = stepFn();
    } catch (err) {
      this.generators.delete(id);
      this.stats.errors++;
      return failure(describeError(err));
    }
    try {
      if (r.done) {
        this.generators.delete(id);
        this.stats.completed++;
        return JSON.stringify({ status: 'completed', output: encode(r.value) });
      }
      const task = r.value;
      const problem = validateTask(task);
      if (problem) {
        this.generators.delete(id);
        return failure(`orchestration '${state.ctx.orchestrationName}' yielded an invalid task: ${problem}`);
      }
      state.pendingType = task.type;
      return JSON.stringify({ status: 'yielded', generatorId: id, task });
    } catch (err) {
      this.generators.delete(id);
      this.stats.errors++;
      return failure(`driver: cannot encode step: ${describeError(err)}`);
    }
  }
}

function validateTask(task) {
  if (!task || typeof task !== 'object') return `expected a task descriptor object, got ${typeof task}`;
  if (!KNOWN_TASK_TYPES.has(task.type)) return `unknown task type '${task.type}'`;
  if ((task.type === 'join' || task.type === 'select') && !Array.isArray(task.tasks)) return `${task.type} needs tasks[]`;
  if (task.type === 'select' && task.tasks.length !== 2) return 'select needs exactly 2 tasks';
  return null;
}

function failure(message) {
  return JSON.stringify({ status: 'error', message: String(message) });
}

/** Adapts `async fn(input, actx)` to the native activity callback `(payload) => Promise<string>`. */
function wrapActivity(name, fn) {
  return async function nativeActivity(payload) {
    const text = String(payload);
    const nl = text.indexOf('\n');
    const infoText = nl < 0 ? text : text.slice(0, nl);
    const rawInput = nl < 0 ? '' : text.slice(nl + 1);
    let info = {};
    try {
      info = JSON.parse(infoText);
    } catch (_) {
      /* keep {} */
    }
    const token = info._traceToken;
    const actx = {
      instanceId: info.instanceId,
      executionId: info.executionId,
      orchestrationName: info.orchestrationName,
      orchestrationVersion: info.orchestrationVersion,
      activityName: info.activityName || name,
      workerId: info.workerId,
      sessionId: info.sessionId,
      tag: info.tag,
      rawInput,
      isCancelled: () => (token ? native.activityIsCancelled(token) : false),
      trace: (level, message) => {
        if (token) native.activityTraceLog(token, level, message);
      },
      getClient: () => (token ? native.activityGetClient(token) : null),
    };
    const result = await fn(decode(rawInput), actx);
    return encode(result);
  };
}

module.exports = {
  Driver,
  OrchestrationContext,
  TaskError,
  Raw,
  raw,
  encode,
  decode,
  native,
};
