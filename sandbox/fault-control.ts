/** The fault proxy's control API over HTTP, for `npm run sandbox -- --fault-proxy` users. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultProxy, FaultRule } from './fault-proxy.js';
import { readBody } from './fault-server.js';

/** Rules over HTTP, for `npm run sandbox -- --fault-proxy` users: PUT a JSON array, GET the counts. */
export const CONTROL_PATH = '/__fault-proxy';

/** Answers the control API: GET the counts, PUT rules (an array, or `{ rules, seed }`), DELETE to reset. */
export async function control(proxy: FaultProxy, req: IncomingMessage, res: ServerResponse) {
  const reply = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  try {
    if (req.method === 'GET') return reply(200, proxy.counts());
    if (req.method === 'DELETE') {
      await proxy.reset();
      return reply(200, proxy.counts());
    }
    if (req.method === 'PUT') {
      const spec = JSON.parse((await readBody(req)).toString('utf8')) as
        | FaultRule[]
        | { rules: FaultRule[]; seed?: number };
      const [list, seed] = Array.isArray(spec) ? [spec, undefined] : [spec.rules, spec.seed];
      proxy.setRules(list, { seed });
      return reply(200, { rules: list.length });
    }
    return reply(405, { error: `use GET (counts), PUT (rules) or DELETE (reset) on ${CONTROL_PATH}` });
  } catch (error) {
    return reply(400, { error: (error as Error).message });
  }
}
