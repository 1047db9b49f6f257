import { afterAll, beforeAll, inject } from 'vitest';
import { forgetObjectsSince } from '../support/forget-objects.js';

/**
 * Each integration file leaves the shared sandbox's S3 as it found it. moto keeps every body it was ever
 * sent for the server's life, so without this a long session (mutation testing re-runs the 26 MiB
 * multipart tests for hours) fills the disk. Files run one at a time, so nothing else is in flight.
 */
let since = 0;

beforeAll(() => {
  since = Date.now();
});

afterAll(async () => {
  await forgetObjectsSince(inject('sandbox').motoEndpoint, since);
});
