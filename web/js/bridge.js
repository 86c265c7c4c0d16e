// The page's only door to the backend: one QWebChannel object `fieldmark` (docs/bridge.md).
// api('namespace.verb', args) resolves to the result or rejects with an ApiError.

export class ApiError extends Error {
  constructor({ code = 'error', message = 'Something went wrong.', detail = null } = {}) {
    super(String(message));
    this.name = 'ApiError';
    this.code = String(code);
    this.detail = detail;
  }
}

let backend = null;
const handlers = new Map(); // event name -> Set<handler>
let pending = 0;
const idleWaiters = [];

function settle() {
  if (pending > 0) return;
  for (const resolve of idleWaiters.splice(0)) resolve();
}

/** Count async work (calls, image loads) so tests can await a quiet page. */
export function track(promise) {
  pending += 1;
  const done = () => { pending -= 1; queueMicrotask(settle); };
  promise.then(done, done);
  return promise;
}

/** Resolves when no call or tracked load is in flight (checked after a macrotask). */
export function idle() {
  return new Promise((resolve) => {
    const check = () => {
      if (pending === 0) resolve();
      else idleWaiters.push(() => setTimeout(check, 0));
    };
    setTimeout(check, 0);
  });
}

export const connected = new Promise((resolve, reject) => {
  const transport = window.qt && window.qt.webChannelTransport;
  if (typeof window.QWebChannel !== 'function' || !transport) {
    reject(new ApiError({ code: 'no_bridge', message: 'This page only works inside the Fieldmark app.' }));
    return;
  }
  // eslint-disable-next-line no-new
  new window.QWebChannel(transport, (channel) => {
    backend = channel.objects.fieldmark;
    if (!backend) {
      reject(new ApiError({ code: 'no_bridge', message: 'The Fieldmark bridge is missing from the page channel.' }));
      return;
    }
    backend.event.connect((name, payloadJson) => dispatch(String(name), payloadJson));
    resolve(backend);
  });
});
// A page opened outside the app must not log an unhandled rejection; callers still see it.
connected.catch(() => {});

function dispatch(name, payloadJson) {
  let payload = null;
  try {
    payload = payloadJson ? JSON.parse(payloadJson) : null;
  } catch (err) {
    console.error(`bridge: event ${name} carried malformed JSON`, err);
    return;
  }
  for (const handler of [...(handlers.get(name) || []), ...(handlers.get('*') || [])]) {
    try {
      handler(payload, name);
    } catch (err) {
      console.error(`bridge: handler for ${name} failed`, err);
    }
  }
}

/** on('project.changed', fn) -> unsubscribe(). '*' hears every event. */
export function on(name, handler) {
  if (!handlers.has(name)) handlers.set(name, new Set());
  handlers.get(name).add(handler);
  return () => handlers.get(name).delete(handler);
}

export function api(method, args = {}) {
  return track(connected.then((obj) => new Promise((resolve, reject) => {
    obj.call(method, JSON.stringify(args), (answerJson) => {
      let answer;
      try {
        answer = JSON.parse(answerJson);
      } catch {
        reject(new ApiError({ code: 'bad_answer', message: `The app sent an unreadable answer to ${method}.` }));
        return;
      }
      if (answer && typeof answer === 'object' && 'error' in answer) reject(new ApiError(answer.error || {}));
      else if (answer && typeof answer === 'object' && 'ok' in answer) resolve(answer.ok);
      else if (answer && typeof answer === 'object' && 'job' in answer) resolve({ job: answer.job });
      else reject(new ApiError({ code: 'bad_answer', message: `The app sent an unexpected answer to ${method}.` }));
    });
  })));
}

// --- jobs: long work answers {job: id} and reports through job.* events ----------------------

const jobs = new Map(); // id -> {resolve, reject, onProgress}
const early = new Map(); // id -> final event that arrived before anyone waited for it

function finishJob(id, settleWith, payload) {
  const waiter = jobs.get(id);
  if (waiter) {
    payload.awaited = true; // later handlers (the app's global ones) know someone handled it
    jobs.delete(id);
    settleWith(waiter);
  } else {
    early.set(id, settleWith);
    if (early.size > 64) early.delete(early.keys().next().value);
  }
}

on('job.progress', (p) => {
  const w = p && jobs.get(p.job);
  if (w && w.onProgress) {
    p.handled = true; // later handlers (the app's status line) know someone shows it
    w.onProgress(p);
  }
});
on('job.done', (p) => p && finishJob(p.job, (w) => w.resolve(p.result), p));
on('job.failed', (p) => p && finishJob(p.job, (w) => w.reject(new ApiError(p.error || {})), p));
on('job.cancelled', (p) => p && finishJob(p.job, (w) => w.reject(new ApiError({ code: 'cancelled', message: 'The job was cancelled.' })), p));

export function isJob(result) {
  return !!result && typeof result === 'object' && !Array.isArray(result)
    && typeof result.job === 'string' && Object.keys(result).length === 1;
}

/** Like api(), but when the answer is {job}, waits for the job's result. */
export async function apiJob(method, args = {}, { onProgress } = {}) {
  const result = await api(method, args);
  if (!isJob(result)) return result;
  return track(new Promise((resolve, reject) => {
    const waiter = { resolve, reject, onProgress };
    const already = early.get(result.job);
    if (already) {
      early.delete(result.job);
      already(waiter);
    } else {
      jobs.set(result.job, waiter);
    }
  }));
}
