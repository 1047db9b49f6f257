// The child side of `npm run invoke`: a stand-in for the Lambda Node.js runtime. Plain JavaScript on
// purpose: it runs on bare `node`, like the bundle it loads, with no TypeScript loader in the process.
// The parent sends one message { modulePath, exportName, event, context: {..., deadlineMs} } and gets back
// { ok: true, result, maxRssKb } or { ok: false, error: { errorType, errorMessage, stack } }.
//
// With `--warm` it is a warm execution environment (sandbox/worker-processes.ts): it stays up and handles
// invocations one after another, as Lambda reuses an environment, loading the module once; each request
// carries an `id` that its reply repeats.
import { pathToFileURL } from 'node:url';

const warm = process.argv.includes('--warm');
/** Modules loaded so far, by path: a warm environment initialises its handler once. */
const loaded = new Map();

if (warm) process.on('message', (request) => void invoke(request).then((reply) => send(reply, request.id)));
else process.once('message', (request) => void invoke(request).then((reply) => send(reply)));

async function invoke(request) {
  const { modulePath, exportName, event, context: fields } = request;
  const { deadlineMs, ...rest } = fields;
  const context = {
    ...rest,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  try {
    if (!loaded.has(modulePath)) {
      // An initialisation that failed is tried again by the next invocation, as Lambda does.
      const loading = import(pathToFileURL(modulePath).href);
      loading.catch(() => loaded.delete(modulePath));
      loaded.set(modulePath, loading);
    }
    const module = await loaded.get(modulePath);
    const handler = module[exportName];
    if (typeof handler !== 'function') {
      throw Object.assign(new Error(`${modulePath} does not export a function named ${exportName}`), {
        name: 'Runtime.HandlerNotFound',
      });
    }
    const result = await new Promise((resolve, reject) => {
      // Promise handlers (middy) settle through the return value; callback handlers through the callback.
      const callback = (error, value) => (error ? reject(error) : resolve(value));
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    });
    return { ok: true, result: result ?? null };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: { errorType: e.name, errorMessage: e.message, stack: e.stack } };
  }
}

function send(message, id) {
  const reply = { ...message, ...(id !== undefined && { id }), maxRssKb: process.resourceUsage().maxRSS };
  process.send(reply, () => {
    if (!warm) process.disconnect();
  });
}
