import { runCli } from '../../cli/run-cli.js';

/** Runs the CLI in this process with `env`, capturing what it prints; stderr is not a terminal. */
export async function captureCli(env: NodeJS.ProcessEnv, ...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exitCode = await runCli(argv, {
    stdout: (text) => stdout.push(text),
    stderr: (text) => stderr.push(text),
    stderrRaw: (text) => stderr.push(text),
    interactive: false,
    env,
  });
  return { exitCode, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}
