/**
 * Clients whose SDK package is loaded on first use. The EventBridge and SQS packages add ~9 MB to a
 * function's memory at start (issue 13: 86 → 77 MB for the sync's bundle), yet an inline run sends to no
 * queue, and the run event goes out once, at the end. With a dynamic `import()` esbuild keeps the package
 * in the same bundle file but runs its module code only when the import is reached.
 */

/** A client, or how to build it when it is first needed. */
export type LazyClient<T> = T | (() => Promise<T>);

/** The client itself, built now if it was lazy. */
export async function clientOf<T extends object>(client: LazyClient<T>): Promise<T> {
  return typeof client === 'function' ? (client as () => Promise<T>)() : client;
}

/**
 * Builds the client once, on the first call, and gives every later call the same one. A build that fails
 * (the package could not be loaded) is tried again on the next call rather than remembered.
 */
export function buildOnce<T>(build: () => Promise<T>): () => Promise<T> {
  let building: Promise<T> | undefined;
  return () => {
    building ??= build().catch((error: unknown) => {
      building = undefined;
      throw error;
    });
    return building;
  };
}
