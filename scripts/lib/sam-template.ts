import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse, type Tags } from 'yaml';

/** A CloudFormation template as plain data, with short-form intrinsics expanded (`!Ref X` → `{ Ref: 'X' }`). */
export interface Template {
  Parameters?: Record<string, { Type?: string; Default?: unknown; [key: string]: unknown }>;
  Conditions?: Record<string, unknown>;
  Globals?: { Function?: Record<string, unknown> };
  Resources: Record<string, Resource>;
  Outputs?: Record<string, { Value: unknown; [key: string]: unknown }>;
  [key: string]: unknown;
}

export interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What a local invoke needs to know about one `AWS::Serverless::Function`. */
export interface FunctionConfig {
  logicalId: string;
  /** Absolute path of CodeUri. */
  codeUri: string;
  /** `file.export`, relative to the code root, as Lambda reads it. */
  handler: string;
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** Environment.Variables, Globals merged in, intrinsics left as they are. */
  environment: Record<string, unknown>;
  buildMethod: string | undefined;
  buildProperties: Record<string, unknown>;
}

// Short forms of the intrinsic functions (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html).
const FUNCTIONS = [
  'And',
  'Base64',
  'Cidr',
  'Equals',
  'FindInMap',
  'GetAtt',
  'GetAZs',
  'If',
  'ImportValue',
  'Join',
  'Not',
  'Or',
  'Select',
  'Split',
  'Sub',
  'ToJsonString',
  'Length',
  'Transform',
];

function intrinsicTags(): Tags {
  const tags: Tags = [
    { tag: '!Ref', resolve: (value: string) => ({ Ref: value }) },
    { tag: '!Condition', resolve: (value: string) => ({ Condition: value }) },
  ];
  for (const name of FUNCTIONS) {
    const key = `Fn::${name}`;
    tags.push(
      {
        tag: `!${name}`,
        // `!GetAtt Resource.Attribute` is the one scalar form that means a list.
        resolve: (value: string) => ({ [key]: name === 'GetAtt' ? splitGetAtt(value) : value }),
      },
      { tag: `!${name}`, collection: 'seq', resolve: (seq) => ({ [key]: seq.toJSON() }) },
      { tag: `!${name}`, collection: 'map', resolve: (map) => ({ [key]: map.toJSON() }) },
    );
  }
  return tags;
}

function splitGetAtt(value: string): string[] {
  const dot = value.indexOf('.');
  return dot === -1 ? [value] : [value.slice(0, dot), value.slice(dot + 1)];
}

/** Parses a CloudFormation/SAM YAML template, expanding the short-form intrinsic tags. */
export function parseTemplate(text: string): Template {
  const template = parse(text, { customTags: intrinsicTags(), uniqueKeys: true }) as unknown;
  if (template === null || typeof template !== 'object' || !('Resources' in template)) {
    throw new Error('not a CloudFormation template: no Resources section');
  }
  return template as Template;
}

/** Reads and parses the template at `path`. */
export function loadTemplate(path: string): Template {
  return parseTemplate(readFileSync(path, 'utf8'));
}

/** Logical ids of the template's `AWS::Serverless::Function` resources. */
export function functionIds(template: Template): string[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => resource.Type === 'AWS::Serverless::Function')
    .map(([id]) => id);
}

/**
 * The configuration of one function with the template's Globals applied, as `sam build`/`sam local` see it.
 *
 * @throws Error naming the id and the valid ids when `logicalId` is not a function of the template.
 */
export function functionConfig(template: Template, templatePath: string, logicalId: string): FunctionConfig {
  const resource = template.Resources[logicalId];
  if (resource?.Type !== 'AWS::Serverless::Function') {
    const ids = functionIds(template);
    throw new Error(
      `${logicalId} is not an AWS::Serverless::Function in ${templatePath}; valid ids: ${ids.join(', ') || '(none)'}`,
    );
  }
  const globals = template.Globals?.Function ?? {};
  const properties = { ...globals, ...resource.Properties };
  const environment = {
    ...variablesOf(globals.Environment),
    ...variablesOf(resource.Properties?.Environment),
  };
  const codeUri = properties.CodeUri ?? '.';
  if (typeof codeUri !== 'string')
    throw new Error(`${logicalId}.CodeUri must be a local path to invoke locally`);
  const handler = properties.Handler;
  if (typeof handler !== 'string') throw new Error(`${logicalId}.Handler must be a string like file.handler`);
  const metadata = resource.Metadata ?? {};
  return {
    logicalId,
    codeUri: resolve(dirname(templatePath), codeUri),
    handler,
    runtime: String(properties.Runtime ?? 'nodejs22.x'),
    // SAM's defaults when the template says nothing.
    timeoutSeconds: Number(properties.Timeout ?? 3),
    memoryMb: Number(properties.MemorySize ?? 128),
    environment,
    buildMethod: typeof metadata.BuildMethod === 'string' ? metadata.BuildMethod : undefined,
    buildProperties: (metadata.BuildProperties as Record<string, unknown> | undefined) ?? {},
  };
}

function variablesOf(environment: unknown): Record<string, unknown> {
  if (environment === null || typeof environment !== 'object') return {};
  const variables = (environment as { Variables?: unknown }).Variables;
  return variables !== null && typeof variables === 'object' ? (variables as Record<string, unknown>) : {};
}

/**
 * Resolves what can be resolved without a deployment: literals, `Ref` to a parameter with a default or to a
 * pseudo parameter, and `Fn::Sub` over those. Anything else (a `Ref` to a resource, `Fn::GetAtt`, …) gives
 * `undefined`, and the caller takes the value from elsewhere (env.json, the sandbox).
 */
export function resolveValue(
  value: unknown,
  template: Template,
  pseudo: Record<string, string>,
): string | undefined {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (value === null || typeof value !== 'object') return undefined;
  const entries = Object.entries(value);
  if (entries.length !== 1) return undefined;
  const [[fn, arg]] = entries as [[string, unknown]];
  if (fn === 'Ref' && typeof arg === 'string') return resolveName(arg, template, pseudo);
  if (fn === 'Fn::Sub') {
    const [text, vars] = typeof arg === 'string' ? [arg, {}] : Array.isArray(arg) ? arg : [undefined, {}];
    if (typeof text !== 'string') return undefined;
    let unresolved = false;
    const out = text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
      const local = (vars as Record<string, unknown>)[name];
      const found =
        local === undefined ? resolveName(name, template, pseudo) : resolveValue(local, template, pseudo);
      if (found === undefined) unresolved = true;
      return found ?? '';
    });
    return unresolved ? undefined : out;
  }
  return undefined;
}

function resolveName(name: string, template: Template, pseudo: Record<string, string>): string | undefined {
  if (name in pseudo) return pseudo[name];
  const parameter = template.Parameters?.[name];
  return parameter?.Default === undefined ? undefined : String(parameter.Default);
}
