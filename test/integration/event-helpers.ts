/**
 * Synthetic S3 events for integration tests: moto gives every real event the same sequencer
 * (docs/event-driven.md), so tests build their own, read by the worker's reader, with real increasing
 * sequencers, pointing at real objects. (Older test files still keep their own copy of `nextSequencer`.)
 */
import { randomUUID } from 'node:crypto';
import { type ObjectChange, parseObjectChange } from '../../functions/core/events/object-change.js';

// Sequencers grow with time, as S3's do: 18 hexadecimal digits from a counter started at the clock.
let counter = BigInt(Date.now()) << 12n;

/** A sequencer later than every one handed out before in this process. */
export function nextSequencer(): string {
  counter += 1n;
  return counter.toString(16).toUpperCase().padStart(18, '0');
}

/** The Object Created event S3 sends (through the producer's rule) for `key` in `bucket`, just written. */
export function objectCreated(bucket: string, key: string): ObjectChange {
  return parseObjectChange({
    id: randomUUID(),
    source: 'aws.s3',
    'detail-type': 'Object Created',
    time: new Date().toISOString(),
    detail: { bucket: { name: bucket }, object: { key, sequencer: nextSequencer() } },
  });
}
