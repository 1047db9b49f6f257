import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { AWS_CLI_V2, RCLONE } from './tools.js';

/** The peers, where Debian puts them and which package does. */
const PEERS = {
  rclone: { binary: RCLONE, apt: 'rclone', versionArgs: ['version'] },
  'aws-cli': { binary: AWS_CLI_V2, apt: 'awscli', versionArgs: ['--version'] },
} as const;

export type Peer = keyof typeof PEERS;

/** Which peers can run, their versions, and why any cannot. */
export interface PeerCheck {
  available: Peer[];
  versions: Partial<Record<Peer, string>>;
  skipped: { peer: Peer; reason: string }[];
}

/**
 * Finds the peers, installing the missing ones with apt when allowed (`apt-get update` once, then
 * `apt-get install -y rclone awscli`), and says so. A peer that cannot be had is skipped with a reason.
 */
export function ensurePeers(wanted: Peer[], install: boolean, say: (line: string) => void): PeerCheck {
  const missing = wanted.filter((peer) => !existsSync(PEERS[peer].binary));
  if (missing.length > 0 && install) {
    const packages = missing.map((peer) => PEERS[peer].apt);
    if (process.getuid?.() !== 0) {
      say(
        `peers missing (${missing.join(', ')}); not root, so not installing: apt-get install ${packages.join(' ')}`,
      );
    } else {
      say(`installing the peers with apt: apt-get update, then apt-get install -y ${packages.join(' ')}`);
      const quiet = { stdio: 'ignore' as const, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
      const update = spawnSync('apt-get', ['update'], quiet);
      const result =
        update.status === 0 ? spawnSync('apt-get', ['install', '-y', ...packages], quiet) : update;
      say(result.status === 0 ? '  installed' : `  apt-get failed (exit ${result.status}); skipping them`);
    }
  }
  const check: PeerCheck = { available: [], versions: {}, skipped: [] };
  for (const peer of wanted) {
    const { binary, versionArgs } = PEERS[peer];
    if (!existsSync(binary)) {
      check.skipped.push({
        peer,
        reason: `${binary} not found (apt-get install ${PEERS[peer].apt}${install ? ' failed' : '; --no-install given'})`,
      });
      continue;
    }
    const version = spawnSync(binary, versionArgs, { encoding: 'utf8', env: withoutCaBundle() });
    check.available.push(peer);
    check.versions[peer] = (version.stdout || version.stderr).split('\n')[0]?.trim() ?? '';
  }
  return check;
}

function withoutCaBundle(): NodeJS.ProcessEnv {
  const { AWS_CA_BUNDLE: _ignored, ...env } = process.env;
  return env;
}
