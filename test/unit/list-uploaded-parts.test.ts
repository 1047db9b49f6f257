import { ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { listUploadedParts } from '../../functions/core/copy/list-uploaded-parts.js';

const s3Mock = mockClient(S3Client);
const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
const where = { Bucket: 'destination', Key: 'big.bin', UploadId: 'upload-1' };
const SIZE = 8;
const part = (PartNumber: number, extra: object = {}) => ({
  PartNumber,
  Size: SIZE,
  ETag: `"e${PartNumber}"`,
  ...extra,
});

describe('listUploadedParts: the parts an earlier run left, if they are the ones planned', () => {
  beforeEach(() => s3Mock.reset());

  it('reads every page, from the marker S3 gives, and keeps each part checksum', async () => {
    s3Mock
      .on(ListPartsCommand, { PartNumberMarker: undefined })
      .resolves({ Parts: [part(1, { ChecksumCRC32: 'crc1' })], IsTruncated: true, NextPartNumberMarker: '1' })
      .on(ListPartsCommand, { PartNumberMarker: '1' })
      .resolves({ Parts: [part(2)], IsTruncated: false });

    const parts = await listUploadedParts(s3, where, SIZE, 2);

    expect(parts).toEqual([
      { PartNumber: 1, ETag: '"e1"', ChecksumCRC32: 'crc1' },
      { PartNumber: 2, ETag: '"e2"' },
    ]);
    expect(s3Mock.commandCalls(ListPartsCommand)).toHaveLength(2);
  });

  it('leaves out part numbers outside 1..count', async () => {
    s3Mock.on(ListPartsCommand).resolves({ Parts: [part(0), part(1), part(2), part(3)] });

    const parts = await listUploadedParts(s3, where, SIZE, 2);

    expect(parts?.map((kept) => kept.PartNumber)).toEqual([1, 2]);
  });

  it('cannot continue an upload missing a planned part', async () => {
    s3Mock.on(ListPartsCommand).resolves({ Parts: [part(1)] });

    expect(await listUploadedParts(s3, where, SIZE, 2)).toBeUndefined();
  });

  it('cannot continue an upload with a part of another size', async () => {
    s3Mock.on(ListPartsCommand).resolves({ Parts: [part(1), { ...part(2), Size: SIZE - 1 }] });

    expect(await listUploadedParts(s3, where, SIZE, 2)).toBeUndefined();
  });
});
