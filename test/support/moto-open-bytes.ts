import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/**
 * Bytes the sandbox's moto server (the one listening on `motoEndpoint`) holds in deleted-but-open files:
 * the object bodies it keeps on disk. Linux only (/proc); undefined when the server is not found.
 */
export function motoOpenBytes(motoEndpoint: string): number | undefined {
  const port = new URL(motoEndpoint).port;
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let command: string;
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // the process ended
    }
    if (!command.includes('moto_server.py') || !command.includes(`--port\0${port}\0`)) continue;
    let bytes = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith('(deleted)'))
          bytes += statSync(`/proc/${pid}/fd/${fd}`).size;
      } catch {
        // closed while read
      }
    }
    return bytes;
  }
  return undefined;
}
