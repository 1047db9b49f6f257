import type { ListObjectsV2CommandInput } from '@aws-sdk/client-s3';
import { compareKeys } from '../../functions/core/plan/keys.js';

/**
 * ListObjectsV2 over `keys` as S3 answers it: byte order, Prefix, StartAfter, Delimiter `/` (a common
 * prefix counts as one entry of MaxKeys), and a continuation token that resumes after the last entry.
 */
export function listing(keys: readonly string[]) {
  const sorted = [...new Set(keys)].sort(compareKeys);
  return (input: ListObjectsV2CommandInput) => {
    const prefix = input.Prefix ?? '';
    const after = input.ContinuationToken ?? input.StartAfter;
    const max = input.MaxKeys ?? 1000;
    const contents: { Key: string }[] = [];
    const common: { Prefix: string }[] = [];
    let truncated = false;
    let lastEntry: string | undefined;
    for (const key of sorted) {
      if (!key.startsWith(prefix) || (after !== undefined && compareKeys(key, after) <= 0)) continue;
      const slash = input.Delimiter ? key.indexOf('/', prefix.length) : -1;
      const entry = slash >= 0 ? key.slice(0, slash + 1) : key;
      if (entry === lastEntry) continue;
      // A folder already returned before a continuation is skipped whole.
      if (slash >= 0 && after !== undefined && after.endsWith('/') && key.startsWith(after)) continue;
      if (contents.length + common.length >= max) {
        truncated = true;
        break;
      }
      if (slash >= 0) common.push({ Prefix: entry });
      else contents.push({ Key: key });
      lastEntry = entry;
    }
    return {
      Contents: contents,
      CommonPrefixes: common,
      IsTruncated: truncated,
      ...(truncated && { NextContinuationToken: lastEntry }),
    };
  };
}
