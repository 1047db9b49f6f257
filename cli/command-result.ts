import type { ExitCode } from './exit-codes.js';

/** What a command produced: printed as `json` with --json, as `text` otherwise. */
export interface CommandResult {
  exitCode: ExitCode;
  json: unknown;
  text: string;
}

/** How a command talks to the person or script that called it. */
export interface CliIo {
  /** Results: the JSON document, or the human text. */
  stdout: (text: string) => void;
  /** Progress, logs and messages for a person: one line each. */
  stderr: (text: string) => void;
  /** Writes to stderr as is, without a line end: the progress line is redrawn in place with it. */
  stderrRaw: (text: string) => void;
  /** stderr is a terminal, so a progress line can be redrawn in place. */
  interactive: boolean;
  /** The terminal's width, when stderr is one: a longer progress line would wrap and not redraw. */
  columns?: number;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: a run starts no new copy, aborts those in flight (recorded as failed), saves its checkpoint. */
  signal?: AbortSignal;
}
