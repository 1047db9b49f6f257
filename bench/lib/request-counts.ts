/**
 * S3 requests by type, as the benchmark reports them (sandbox/server_patches/sandbox_endpoints.py classifies
 * them).
 */
export const REQUEST_TYPES = ['LIST', 'GET', 'PUT', 'POST', 'HEAD', 'DELETE', 'OTHER'] as const;

/**
 * LIST is ListObjects(V2); GET is GetObject, ranged or whole; PUT is PutObject and UploadPart; POST is
 * CreateMultipartUpload, CompleteMultipartUpload and DeleteObjects; HEAD is HeadObject and HeadBucket;
 * OTHER is bucket sub-resources such as ?location.
 */
export type RequestCounts = Record<(typeof REQUEST_TYPES)[number], number>;

/**
 * The S3 requests moto served since the last call, by type, counted inside moto's server
 * (`/_sandbox/s3-requests`), so no proxy sits between the tools and S3. Each call starts a new count.
 */
export async function takeS3RequestCounts(motoEndpoint: string): Promise<RequestCounts> {
  const response = await fetch(new URL('/_sandbox/s3-requests', motoEndpoint), { method: 'DELETE' });
  if (!response.ok) {
    throw new Error(`moto did not give its S3 request counts (${response.status}): ${await response.text()}`);
  }
  return (await response.json()) as RequestCounts;
}
