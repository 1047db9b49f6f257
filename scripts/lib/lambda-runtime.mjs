// The child side of `npm run invoke`: a stand-in for the Lambda Node.js runtime. Plain JavaScript on
// purpose: it runs on bare `node`, like the bundle it loads, with no TypeScript loader in the process.
// The parent sends one message { modulePath, exportName, event, context: {..., deadlineMs} } and gets back
// { ok: true, result, maxRssKb } or { ok: false, error: { errorType, errorMessage, stack } }.
import { pathToFileURL } from 'node:url';

process.once('message', async (request) => {
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
    const module = await import(pathToFileURL(modulePath).href);
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
    send({ ok: true, result: result ?? null });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    send({ ok: false, error: { errorType: e.name, errorMessage: e.message, stack: e.stack } });
  }
});

function send(message) {
  process.send({ ...message, maxRssKb: process.resourceUsage().maxRSS }, () => process.disconnect());
}
