// Write a `crm` workflow step as one plain function (JavaScript; the same shape as the Rust
// SDK):
//
//   import { step, Output, records, info } from './.crm/sdk-js/crm-sdk.js';
//
//   export const run = step((input) => {
//     const contact = records.getContact(input.runInputField('contact_id')); // records:read
//     info('looked up', { id: contact.id });                                   // log
//     return Output.json({ name: contact.name });
//   });
//
// Host calls that fail throw a StepError (a transient failure is retryable, everything else
// permanent), so a step lets them propagate unless it has something better to do. Calling a
// host interface the step was not granted ends the step with `capability_denied`. Any other
// exception ends the step with a permanent `exception` error that names it.
//
// The imports below are the `crm:automation` interfaces of `wit/step.wit`, bound by
// componentize-js when the component is built. Integers the WIT declares as s64 (ids,
// amounts, times) arrive as BigInt; this SDK hands them to steps as Numbers (every id and
// millisecond time fits in 2^53) and accepts Numbers back.

import * as wit_records from 'crm:automation/records@0.1.0';
import * as wit_log from 'crm:automation/log@0.1.0';
import * as wit_state from 'crm:automation/state@0.1.0';
import * as wit_secrets from 'crm:automation/secrets@0.1.0';
import * as wit_http from 'crm:automation/http@0.1.0';
import * as wit_notify from 'crm:automation/notify@0.1.0';

/** Milliseconds in one day, for day-based settings. */
export const DAY_MS = 86_400_000;

/** Milliseconds since the Unix epoch, from the host's clock (the unit of record times). */
export function nowMs() {
  return Date.now();
}

/** Why a step failed: its kind ('retryable' or 'permanent'), a short code and a message. */
export class StepError extends Error {
  constructor(kind, code, message) {
    super(`${code}: ${message}`);
    this.kind = kind;
    this.code = code;
    this.detail = message;
  }
  get isRetryable() {
    return this.kind === 'retryable';
  }
  /** Retrying cannot help: bad input, a missing record, a broken contract. */
  static permanent(code, message) {
    return new StepError('permanent', code, message);
  }
  /** A transient failure: the scheduler tries the step again with backoff. */
  static retryable(code, message) {
    return new StepError('retryable', code, message);
  }
  /** The step's input or config does not have the expected shape. */
  static invalidInput(message) {
    return StepError.permanent('invalid_input', message);
  }
}

const HOST_ERRORS = {
  'not-found': ['not_found', 'permanent'],
  invalid: ['invalid', 'permanent'],
  conflict: ['conflict', 'permanent'],
  unavailable: ['unavailable', 'retryable'],
};

/** s64 values come as BigInt: steps get Numbers. */
function plain(value) {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Uint8Array) return value;
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/** Calls a host import; a host error becomes the StepError the Rust SDK's `?` makes of it. */
function hostCall(f, ...args) {
  try {
    return plain(f(...args));
  } catch (e) {
    const payload = e && e.payload;
    if (payload && typeof payload.tag === 'string') {
      const [code, kind] = HOST_ERRORS[payload.tag] || ['unavailable', 'retryable'];
      throw new StepError(kind, code, String(payload.val));
    }
    throw e;
  }
}

/** The step's input: run input, outputs of the steps it needs, config, context. */
export class Input {
  constructor(context, runInput, deps, config) {
    this.context = context;
    this.runInput = runInput;
    this.deps = deps;
    this.config = config;
  }
  /** The config as an object; a missing config reads as `{}`. */
  configObject() {
    if (this.config === null || this.config === undefined) return {};
    if (typeof this.config !== 'object' || Array.isArray(this.config)) {
      throw StepError.invalidInput('step config: expected an object');
    }
    return this.config;
  }
  /** One field of the run input, which must be present. */
  runInputField(name) {
    if (this.runInput === null || typeof this.runInput !== 'object' || !(name in this.runInput)) {
      throw StepError.invalidInput(`the run input has no \`${name}\` field`);
    }
    return this.runInput[name];
  }
  /** The output of a step this one needs, which must be present. */
  dep(step) {
    if (!(step in this.deps)) {
      throw StepError.invalidInput(`no output of step \`${step}\`: is it listed in \`needs\`?`);
    }
    return this.deps[step];
  }
  /** A field looked up first in the config, then in the run input (undefined when neither has it). */
  setting(name) {
    const c = this.config;
    if (c && typeof c === 'object' && c[name] !== undefined && c[name] !== null) return c[name];
    const r = this.runInput;
    return r && typeof r === 'object' ? r[name] : undefined;
  }
}

/** What a step returns: a JSON value and, optionally, which successors run (branching). */
export class Output {
  constructor(value, next) {
    this.value = value;
    this.next = next;
  }
  static json(value) {
    return new Output(value, undefined);
  }
  /** Runs only these successor steps; an empty list ends this branch. */
  withNext(steps) {
    this.next = [...steps];
    return this;
  }
}

function parse(text, what) {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw StepError.invalidInput(`${what} is not valid JSON: ${e.message}`);
  }
}

function toWit(e) {
  return { kind: e.kind, code: e.code, message: e.detail };
}

/** Exports `f(input) -> Output` as the component's `run`: `export const run = step(f);` */
export function step(f) {
  return function run(raw) {
    try {
      const deps = {};
      for (const [name, text] of raw.deps) deps[name] = parse(text, `output of step \`${name}\``);
      const context = plain(raw.context);
      const input = new Input(context, parse(raw.runInput, 'the run input'), deps, parse(raw.config, 'the step config'));
      let out = f(input);
      if (!(out instanceof Output)) out = Output.json(out);
      let text;
      try {
        text = JSON.stringify(out.value === undefined ? null : out.value);
      } catch (e) {
        throw StepError.permanent('output_not_serializable', e.message);
      }
      return { output: text, next: out.next };
    } catch (e) {
      if (e instanceof StepError) throw toWit(e);
      const name = (e && e.name) || typeof e;
      console.error(e && e.stack ? e.stack : String(e));
      throw toWit(StepError.permanent('exception', `${name}: ${e && e.message !== undefined ? e.message : String(e)}`));
    }
  };
}

function emit(level, message, fields) {
  wit_log.write(level, message, fields === undefined || fields === null ? '' : JSON.stringify(fields));
}
/** Structured logging into the step's log (capability `log`). */
export const debug = (message, fields) => emit('debug', message, fields);
export const info = (message, fields) => emit('info', message, fields);
export const warn = (message, fields) => emit('warn', message, fields);
export const error = (message, fields) => emit('error', message, fields);
export const log = { debug, info, warn, error };

const SYMBOLS = { USD: '$', EUR: '€', GBP: '£' };

/** `formatMoney(1234550, 'USD')` → `'$12,345.50'`; other currencies keep their code. */
export function formatMoney(amountMinor, currency) {
  const sign = amountMinor < 0 ? '-' : '';
  const abs = Math.abs(amountMinor);
  const major = Math.floor(abs / 100);
  const minor = String(abs % 100).padStart(2, '0');
  const grouped = String(major).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const symbol = SYMBOLS[currency];
  return symbol !== undefined ? `${sign}${symbol}${grouped}.${minor}` : `${sign}${grouped}.${minor} ${currency}`;
}

// Patch fields that are `option<option<T>>` in the WIT: given means "set", null means "clear".
// The bindings read the outer option as a variant, `{tag: 'none'}` or `{tag: 'some', val}`.
const NESTED = {
  contact: ['email', 'phone', 'companyId', 'ownerId'],
  company: ['domain', 'phone', 'ownerId'],
  deal: ['contactId', 'companyId', 'ownerId', 'expectedClose'],
  task: ['dueAt', 'assigneeId'],
  note: [],
};

function custom(fields) {
  const out = { ...fields };
  if (out.custom !== undefined && typeof out.custom !== 'string') out.custom = JSON.stringify(out.custom);
  return out;
}

function newRecord(fields) {
  return { tags: [], custom: '{}', ...custom(fields) };
}

function patch(kind, fields) {
  const out = custom(fields);
  for (const name of NESTED[kind]) {
    out[name] = name in out ? { tag: 'some', val: out[name] === null ? undefined : out[name] } : { tag: 'none' };
  }
  return out;
}

/**
 * Typed CRM records (capability `records:read` for reads, `records:write` for writes).
 * Filters, patches and new records are objects naming only the fields they set
 * (`findDeals({ contactId: 7, limit: 50 })`); `custom` may be an object (sent as JSON).
 * Enums are strings: a deal's status is 'open', 'won' or 'lost'; record kinds are
 * 'contact', 'company', 'deal', 'task', 'note'.
 */
export const records = {
  getContact: (id) => hostCall(wit_records.getContact, id),
  findContacts: (filter = {}) => hostCall(wit_records.findContacts, filter),
  createContact: (fields) => hostCall(wit_records.createContact, newRecord(fields)),
  updateContact: (id, fields) => hostCall(wit_records.updateContact, id, patch('contact', fields)),
  getCompany: (id) => hostCall(wit_records.getCompany, id),
  findCompanies: (filter = {}) => hostCall(wit_records.findCompanies, filter),
  createCompany: (fields) => hostCall(wit_records.createCompany, newRecord(fields)),
  updateCompany: (id, fields) => hostCall(wit_records.updateCompany, id, patch('company', fields)),
  getDeal: (id) => hostCall(wit_records.getDeal, id),
  findDeals: (filter = {}) => hostCall(wit_records.findDeals, filter),
  createDeal: (fields) => hostCall(wit_records.createDeal, newRecord(fields)),
  updateDeal: (id, fields) => hostCall(wit_records.updateDeal, id, patch('deal', fields)),
  getTask: (id) => hostCall(wit_records.getTask, id),
  findTasks: (filter = {}) => hostCall(wit_records.findTasks, filter),
  createTask: (fields) => hostCall(wit_records.createTask, custom(fields)),
  /** The workflow's open task with this key, created from `fields` when there is none. */
  ensureTask: (key, fields) => hostCall(wit_records.ensureTask, key, custom(fields)),
  updateTask: (id, fields) => hostCall(wit_records.updateTask, id, patch('task', fields)),
  getNote: (id) => hostCall(wit_records.getNote, id),
  findNotes: (filter = {}) => hostCall(wit_records.findNotes, filter),
  createNote: (fields) => hostCall(wit_records.createNote, custom(fields)),
  updateNote: (id, fields) => hostCall(wit_records.updateNote, id, patch('note', fields)),
  /** The newest changes to one record, newest first. */
  recordActivity: (kind, id, limit) => hostCall(wit_records.recordActivity, kind, id, limit),
  /**
   * A CRM user as a step may see them: `{ id, name, timeZone, remindBeforeMinutes }` (an
   * IANA zone such as 'Europe/Berlin'; how long before a task is due they want its
   * reminder). An id that names no user throws `not_found`.
   */
  getUser: (id) => hostCall(wit_records.getUser, id),
  /** A record's custom fields as an object. */
  customOf: (record) => JSON.parse(record.custom || '{}'),
};

/** The workflow's own key-value store, kept across runs (capability `state`); JSON values. */
export const state = {
  get(key) {
    const text = hostCall(wit_state.get, key);
    return text === undefined || text === null ? undefined : JSON.parse(text);
  },
  set: (key, value) => hostCall(wit_state.set, key, JSON.stringify(value)),
  delete: (key) => hostCall(wit_state.delete, key),
};

/** Secrets by name (capability `secret:NAME`). */
export const secrets = {
  get: (name) => hostCall(wit_secrets.get, name),
};

/** Outbound HTTP(S) to granted destinations (capability `http:HOST`); redirects are returned. */
export const http = {
  send({ method = 'GET', url, headers = {}, body, timeoutMs } = {}) {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    return hostCall(wit_http.send, { method, url, headers: Object.entries(headers), body: bytes, timeoutMs });
  },
};

/** What a button does: marks task `taskId` done. */
export function completeTask(taskId) {
  return { tag: 'complete-task', val: taskId };
}

/** What a button does: starts a run of the deployed workflow `workflow` with `input` (an object, at most 4 KB of JSON). */
export function startRun(workflow, input) {
  return { tag: 'start-run', val: { workflow, input: JSON.stringify(input) } };
}

/**
 * Chat messages to CRM users (capability `notify`), optionally with at most 8 buttons under
 * them, each `{ label, action }` (labels 1 to 40 characters):
 *
 *   notify.sendWithButtons(userId, '⏰ Reminder: Call Ann', [
 *     { label: '✅ Done', action: completeTask(task.id) },
 *     { label: '⏰ Snooze 1 h', action: startRun('task-reminder', { task_id: task.id, snooze_minutes: 60 }) },
 *   ]);
 *
 * A press acts as the person the message went to, with their role's rights, and a message is
 * answered by one press only. The host refuses the whole message, as `invalid`, when a
 * button breaks a rule.
 */
export const notify = {
  send: (userId, text) => hostCall(wit_notify.send, userId, text),
  sendWithButtons: (userId, text, buttons) =>
    hostCall(
      wit_notify.sendWithButtons,
      userId,
      text,
      [...buttons].map(({ label, action }) => ({ label, action })),
    ),
  completeTask,
  startRun,
};
