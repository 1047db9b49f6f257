/** The local sandbox could not start or failed its own self-check. */
export class SandboxError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A tool the sandbox runs (Java, Python with moto, the DynamoDB Local jar) is missing or too old. */
export class SandboxPrerequisiteError extends SandboxError {}
