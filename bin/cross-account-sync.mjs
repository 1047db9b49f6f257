#!/usr/bin/env node
// Runs the TypeScript CLI (cli/main.ts) through tsx's loader, in this process: no build step after
// `npm ci`, and signals and the exit code reach the CLI directly.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
