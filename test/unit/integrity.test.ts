import { describe, expect, it } from 'vitest';
import { isPlainMd5Etag, stripQuotes } from '../../functions/core/copy/integrity.js';

const md5 = '0123456789abcdef0123456789abcdef';

describe('stripQuotes', () => {
  it('removes the quotes S3 puts round an ETag, and only those at its ends', () => {
    expect(stripQuotes(`"${md5}"`)).toBe(md5);
    expect(stripQuotes(md5)).toBe(md5);
    expect(stripQuotes('"a"b"')).toBe('a"b');
  });
});

describe('isPlainMd5Etag: an ETag that is the MD5 of the body', () => {
  it('takes a quoted or bare 32-digit hex ETag of an unencrypted or SSE-S3 object', () => {
    expect(isPlainMd5Etag(`"${md5}"`, undefined)).toBe(true);
    expect(isPlainMd5Etag(md5, 'AES256')).toBe(true);
  });

  it('refuses an ETag with anything before or after the MD5: a multipart ETag or a weak one', () => {
    expect(isPlainMd5Etag(`"${md5}-2"`, undefined)).toBe(false);
    expect(isPlainMd5Etag(`W/"${md5}"`, undefined)).toBe(false);
  });

  it('refuses the ETag of an SSE-KMS or DSSE-KMS object, which is not an MD5 even when it looks like one', () => {
    expect(isPlainMd5Etag(md5, 'aws:kms')).toBe(false);
    expect(isPlainMd5Etag(md5, 'aws:kms:dsse')).toBe(false);
  });
});
