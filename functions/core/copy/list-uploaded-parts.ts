/** An earlier run's upload as S3 still holds it: its parts 1..n, listed, for the next run to continue. */
import { type CompletedPart, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * The parts 1..n of an upload an earlier run left, as S3 lists them, if each has the planned size; else
 * undefined (the upload is gone or not what the record says, so it cannot be continued).
 */
export async function listUploadedParts(
  s3: S3Client,
  where: { Bucket: string; Key: string; UploadId: string },
  partSize: number,
  count: number,
): Promise<CompletedPart[] | undefined> {
  const parts: CompletedPart[] = [];
  let marker: string | undefined;
  do {
    const page = await s3.send(new ListPartsCommand({ ...where, PartNumberMarker: marker }));
    for (const part of page.Parts ?? []) {
      const number = part.PartNumber ?? 0;
      if (number < 1 || number > count) continue;
      if (part.Size !== partSize) return undefined;
      parts.push({
        PartNumber: number,
        ETag: part.ETag,
        ...(part.ChecksumCRC32 && { ChecksumCRC32: part.ChecksumCRC32 }),
      });
    }
    marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
  } while (marker);
  return parts.length === count ? parts : undefined;
}
