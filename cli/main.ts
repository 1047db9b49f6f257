// `cross-account-sync <command>`: wiring only; see run-cli.ts. bin/cross-account-sync.mjs starts this.
import { runCli } from './run-cli.js';
import { stopOnCtrlC } from './stop-on-ctrl-c.js';

// The SDK's Node 20 notice would land in every command's output; README "Node versions" covers it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const signal = stopOnCtrlC({
  once: (name, listener) => process.once(name, listener),
  write: (text) => process.stderr.write(text),
  exit: (code) => process.exit(code),
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  stderrRaw: (text) => process.stderr.write(text),
  interactive: Boolean(process.stderr.isTTY),
  columns: process.stderr.isTTY ? process.stderr.columns : undefined,
  env: process.env,
  signal,
});
