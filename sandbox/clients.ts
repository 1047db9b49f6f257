import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { STSClient } from '@aws-sdk/client-sts';
import type { AwsKeys, SandboxEndpoints } from './sandbox.js';

/** Keys from AssumeRole carry a session token; long-term user keys do not. */
export type SandboxCredentials = AwsKeys & { sessionToken?: string };

// DynamoDB Local accepts any signature; these keys only keep the SDK from searching for real ones.
const DYNAMODB_LOCAL_KEYS: AwsKeys = { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' };

/** An S3 client on the sandbox's moto, acting with `keys`. Path-style: there is no DNS for bucket hosts. */
export function sandboxS3(info: SandboxEndpoints, keys: SandboxCredentials): S3Client {
  return new S3Client({
    region: info.region,
    endpoint: info.motoEndpoint,
    credentials: { ...keys }, // a copy: the SDK tags the object it is given with $source
    forcePathStyle: true,
  });
}

/** An STS client on the sandbox's moto, acting with `keys`. */
export function sandboxSts(info: SandboxEndpoints, keys: SandboxCredentials): STSClient {
  return new STSClient({ region: info.region, endpoint: info.motoEndpoint, credentials: { ...keys } });
}

/** An IAM client on the sandbox's moto, acting with `keys`. */
export function sandboxIam(info: SandboxEndpoints, keys: SandboxCredentials): IAMClient {
  return new IAMClient({ region: info.region, endpoint: info.motoEndpoint, credentials: { ...keys } });
}

/** An EventBridge client on the sandbox's moto, acting with `keys`. */
export function sandboxEvents(info: SandboxEndpoints, keys: SandboxCredentials): EventBridgeClient {
  return new EventBridgeClient({
    region: info.region,
    endpoint: info.motoEndpoint,
    credentials: { ...keys },
  });
}

/** An SQS client on the sandbox's moto, acting with `keys`. */
export function sandboxSqs(info: SandboxEndpoints, keys: SandboxCredentials): SQSClient {
  return new SQSClient({ region: info.region, endpoint: info.motoEndpoint, credentials: { ...keys } });
}

/** A DynamoDB client on the sandbox's DynamoDB Local. */
export function sandboxDynamo(info: SandboxEndpoints): DynamoDBClient {
  return new DynamoDBClient({
    region: info.region,
    endpoint: info.dynamodbEndpoint,
    credentials: { ...DYNAMODB_LOCAL_KEYS },
  });
}
