// `npm run sandbox`: the local two-account sandbox, up until Ctrl-C, with the environment to point tools at it.
// `npm run sandbox -- --fault-proxy`: the same, with S3, STS and DynamoDB behind the fault-injecting proxy.
import { CONTROL_PATH } from './fault-proxy.js';
import { startSandbox } from './sandbox.js';

const USAGE = 'usage: npm run sandbox [-- --fault-proxy]';
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--fault-proxy')) {
  console.error(`unknown argument ${args.find((arg) => arg !== '--fault-proxy')}\n${USAGE}`);
  process.exit(2);
}
const faultProxy = args.includes('--fault-proxy');

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

let sandbox: Awaited<ReturnType<typeof startSandbox>>;
try {
  sandbox = await startSandbox({ log: (message) => console.error(message), faultProxy });
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

const { accountA, accountB } = sandbox;
console.log(`
Local two-account AWS sandbox (${sandbox.region})
  moto (S3, STS, IAM, EventBridge, SQS)  ${sandbox.motoEndpoint}
  DynamoDB Local       ${sandbox.dynamodbEndpoint}${describeFaultProxy()}

AccountA ${accountA.id} (producer)
  source bucket        s3://${accountA.bucket}  (test.txt, test2.txt)
  read-only role       ${accountA.roleArn}
  ExternalId           ${accountA.externalId}
  admin keys           producer-admin  ${accountA.admin.accessKeyId} / ${accountA.admin.secretAccessKey}

AccountB ${accountB.id} (consumer)
  destination bucket   s3://${accountB.destinationBucket}
  state table          ${accountB.tableName}
  run events           bus ${accountB.eventBusName} -> queue ${accountB.eventsQueueUrl}
  syncer keys          ${accountB.syncer.accessKeyId} / ${accountB.syncer.secretAccessKey}
  admin keys           consumer-admin  ${accountB.admin.accessKeyId} / ${accountB.admin.secretAccessKey}

# Act as AccountB's syncer from another shell (the SDK, AWS CLI v2 and recent v1 read AWS_ENDPOINT_URL_*):`);
for (const [name, value] of Object.entries(sandbox.env)) {
  // The AWS CLI rejects an empty AWS_PROFILE ("The config profile () could not be found"); unset it instead.
  console.log(value === '' ? `unset ${name}` : `export ${name}=${shellQuote(value)}`);
}
console.log(`
# then, for example:
aws sts assume-role --role-arn ${accountA.roleArn} --role-session-name me --external-id ${accountA.externalId}
aws s3 ls s3://${accountB.destinationBucket}    # older CLIs: add --endpoint-url ${sandbox.motoEndpoint}

Ctrl-C stops the sandbox; its data lives in memory only.`);

function describeFaultProxy(): string {
  const proxy = sandbox.faultProxy;
  if (!proxy) return '';
  const control = `${proxy.endpoints.s3}${CONTROL_PATH}`;
  return `
  fault proxy          S3 ${proxy.endpoints.s3}  STS ${proxy.endpoints.sts}  DynamoDB ${proxy.endpoints.dynamodb}
                       (the environment below goes through it; it forwards until given rules)
    set rules          curl -X PUT ${control} -d '{"seed":1,"rules":[{"operation":"GetObject","rate":0.2,"fault":{"type":"slow-down"}}]}'
    counts / clear     curl ${control}   /   curl -X DELETE ${control}`;
}

// The services' pipes do not hold the event loop (so a forgotten stop() never hangs a test run); this does.
const keepAlive = setInterval(() => {}, 1 << 30);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the sandbox`);
    clearInterval(keepAlive);
    await sandbox.stop();
    process.exit(0);
  });
}
