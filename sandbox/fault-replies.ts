/** The proxy's own answers: an injected error in the service's wire format, or 502 when upstream failed. */
import type { ServerResponse } from 'node:http';
import type { ProxiedService } from './fault-proxy.js';

/** The errors the proxy answers with itself. */
export type ErrorKind = 'slow-down' | 'throttle' | 'expired-token' | 'internal-error' | 'request-timeout';

const S3_ERRORS: Record<ErrorKind, [number, string, string]> = {
  'slow-down': [503, 'SlowDown', 'Please reduce your request rate.'],
  'internal-error': [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  'expired-token': [403, 'ExpiredToken', 'The provided token has expired.'],
  throttle: [503, 'SlowDown', 'Please reduce your request rate.'],
  'request-timeout': [
    400,
    'RequestTimeout',
    'Your socket connection to the server was not read from or written to within the timeout period.',
  ],
};

const DYNAMODB_ERRORS: Record<ErrorKind, [number, string, string]> = {
  throttle: [
    400,
    'ProvisionedThroughputExceededException',
    'The level of configured provisioned throughput for the table was exceeded.',
  ],
  'slow-down': [400, 'ThrottlingException', 'Rate of requests exceeds the allowed throughput.'],
  'internal-error': [500, 'InternalServerError', 'Internal server error'],
  'expired-token': [400, 'ExpiredTokenException', 'The security token included in the request is expired'],
  'request-timeout': [400, 'RequestTimeout', 'Request timed out'],
};

/** An error in the service's own wire format, so the SDK parses it as it would AWS's. */
export function sendError(res: ServerResponse, service: ProxiedService, kind: ErrorKind): void {
  res.req.resume(); // an unread request body would otherwise hold the connection
  if (service === 'dynamodb') {
    const [status, code, message] = DYNAMODB_ERRORS[kind];
    const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message });
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': body.length });
    res.end(body);
    return;
  }
  const [status, code, message] = S3_ERRORS[kind];
  const body =
    service === 'sts'
      ? `<ErrorResponse><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${code}</Code>` +
        `<Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
        `<RequestId>fault-proxy</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** 502: the upstream request failed before an answer could be passed on. */
export function sendBadGateway(res: ServerResponse, error: Error): void {
  const body = `fault proxy: upstream failed: ${error.message}`;
  res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
