// `cross-account-sync <command>`: wiring only; see run-cli.ts. bin/cross-account-sync.mjs starts this.
import { EXIT } from './exit-codes.js';
import { runCli } from './run-cli.js';

// The SDK's Node 20 notice would land in every command's output; README "Node versions" covers it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const controller = new AbortController();
process.once('SIGINT', () => {
  process.stderr.write(
    '\nstopping (Ctrl-C): no new copy starts; copies in flight are aborted and recorded as failed; ' +
      'the checkpoint is saved, and the next run resumes from it and copies them again.\n' +
      'Ctrl-C again quits at once: the lease then stays held for up to 2 minutes.\n',
  );
  controller.abort();
  process.once('SIGINT', () => process.exit(EXIT.interrupted));
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  stderrRaw: (text) => process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY),
  columns: process.stderr.isTTY ? process.stderr.columns : undefined,
  env: process.env,
  signal: controller.signal,
});
