/**
 * Drops every object version, delete marker and multipart upload the sandbox's S3 stored at or after
 * `since` (epoch ms), closing their bodies (`/_sandbox/forget-objects`); returns how many went.
 */
export async function forgetObjectsSince(
  motoEndpoint: string,
  since: number,
): Promise<{ versions: number; uploads: number }> {
  const response = await fetch(new URL('/_sandbox/forget-objects', motoEndpoint), {
    method: 'POST',
    body: JSON.stringify({ since }),
  });
  if (!response.ok) {
    throw new Error(`moto did not forget the objects (${response.status}): ${await response.text()}`);
  }
  return (await response.json()) as { versions: number; uploads: number };
}
