import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';
import { fieldSpec, type FieldName, type FieldSpec } from '@sdxl-kit/client/core';

/** The contract's fields offered under Options: everything but the two prompts and the wire's base64 switch. */
export const OPTION_FIELDS: readonly FieldName[] = [
  'guidanceScale',
  'height',
  'highNoiseFraction',
  'refiner',
  'samples',
  'scheduler',
  'seed',
  'steps',
  'strength',
  'style',
  'width',
];

const DISPLAY_NAMES: Record<FieldName, string> = {
  prompt: 'Prompt',
  negativePrompt: 'Negative Prompt',
  style: 'Style',
  samples: 'Number of Images',
  scheduler: 'Scheduler',
  steps: 'Steps',
  guidanceScale: 'Guidance Scale',
  strength: 'Refiner Strength',
  highNoiseFraction: 'High Noise Fraction',
  seed: 'Seed',
  width: 'Width',
  height: 'Height',
  refiner: 'Refiner',
  base64: 'Base64',
};

/** What the form calls a contract field ("Number of Images" for `samples`), or undefined for another name. */
export function displayNameOf(field: string): string | undefined {
  return Object.hasOwn(DISPLAY_NAMES, field) ? DISPLAY_NAMES[field as FieldName] : undefined;
}

/**
 * Defaults of the options the node adds around the contract (how it paces and shapes output). The
 * parameters below repeat them as literals, which n8n's linter requires; a test keeps the two equal.
 */
export const NODE_DEFAULTS = {
  /** The free plan allows 5 requests a minute. */
  requestsPerMinute: 5,
  /** Two in flight keeps a 5-a-minute plan busy (a call takes about 6 s) without bursting. */
  maxInFlight: 2,
  lowCreditsThreshold: 1,
  binaryPropertyName: 'data',
  timeoutSeconds: 120,
} as const;

// n8n's guidelines word a switch as a question ("Whether ..."); the contract's table words it as an action.
const BOOLEAN_DESCRIPTIONS: Partial<Record<FieldName, string>> = {
  refiner: 'Whether to run the SDXL refiner for finer detail. It needs a High Noise Fraction below 1.',
};

function bounds(spec: FieldSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` From ${spec.min} to ${spec.max}.`;
  return '';
}

function fieldOption(name: FieldName): INodeProperties {
  const spec = fieldSpec(name);
  const base = { displayName: DISPLAY_NAMES[name], name };
  switch (spec.kind) {
    case 'choice':
      return {
        ...base,
        type: 'options',
        // The API publishes no list: these are the known values, and an expression may give any other.
        options: (spec.values ?? [])
          .map((value): INodePropertyOptions => ({ name: String(value), value }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        default: spec.default as string,
        description: `${spec.description} The API publishes no full list: to use another value, switch this field to Expression and type it.`,
      };
    case 'boolean':
      return {
        ...base,
        type: 'boolean',
        default: spec.default as boolean,
        description: BOOLEAN_DESCRIPTIONS[name],
      };
    case 'integer':
      if (spec.values) {
        return {
          ...base,
          type: 'options',
          options: spec.values.map((value): INodePropertyOptions => ({ name: String(value), value })),
          default: spec.default as number,
          description: spec.description,
        };
      }
      return {
        ...base,
        type: 'number',
        typeOptions: { minValue: spec.min, maxValue: spec.max, numberPrecision: 0 },
        default: spec.default as number,
        description: `${spec.description}${bounds(spec)}`,
      };
    case 'number':
      return {
        ...base,
        type: 'number',
        typeOptions: { minValue: spec.min, maxValue: spec.max, numberPrecision: 2 },
        default: spec.default as number,
        description: `${spec.description}${bounds(spec)}`,
      };
    case 'text':
      return {
        ...base,
        type: 'string',
        default: (spec.default as string) ?? '',
        description: spec.description,
      };
  }
}

/** Options about how the node runs rather than what the image looks like. */
const NODE_OPTIONS: INodeProperties[] = [
  {
    displayName: 'Images in Flight',
    name: 'maxInFlight',
    type: 'number',
    typeOptions: { minValue: 1, maxValue: 16, numberPrecision: 0 },
    default: 2,
    description:
      'How many requests may run at the same time for this account, across all items and every execution in this n8n process that uses the same credential and pacing options. Read from the first item.',
  },
  {
    displayName: 'Low Credit Threshold',
    name: 'lowCreditsThreshold',
    type: 'number',
    typeOptions: { minValue: 0 },
    default: 1,
    description:
      'When the credits left fall below this, items get "lowCredits": true and the run shows a warning',
  },
  {
    displayName: 'Put Output in Field',
    name: 'binaryPropertyName',
    type: 'string',
    default: 'data',
    description: 'The name of the binary field to put each image in',
  },
  {
    displayName: 'Requests per Minute',
    name: 'requestsPerMinute',
    type: 'number',
    typeOptions: { minValue: 1, maxValue: 1000, numberPrecision: 0 },
    default: 5,
    description:
      'The most requests to start in any minute for this account (5 on the free plan, 50 on Pro), across all items and every execution in this n8n process that uses the same credential and pacing options. Read from the first item.',
  },
  {
    displayName: 'Return Base64 in JSON',
    name: 'returnBase64',
    type: 'boolean',
    default: false,
    description:
      'Whether to put each image as base64 text in the JSON (field "base64") instead of a binary file',
  },
  {
    displayName: 'Timeout (Seconds)',
    name: 'timeoutSeconds',
    type: 'number',
    typeOptions: { minValue: 1, maxValue: 600 },
    default: 120,
    description: 'How long to wait for one image before giving up',
  },
];

function byDisplayName(a: INodeProperties, b: INodeProperties): number {
  return a.displayName.localeCompare(b.displayName);
}

/** The node's parameters: Prompt and Negative Prompt up front, every other field under Options. */
export const nodeProperties: INodeProperties[] = [
  {
    displayName: 'Operation',
    name: 'operation',
    type: 'options',
    noDataExpression: true,
    options: [
      {
        name: 'Generate Image',
        value: 'generateImage',
        action: 'Generate an image',
        description: 'Make images from a text prompt with SDXL 1.0',
      },
    ],
    default: 'generateImage',
  },
  {
    displayName: 'Prompt',
    name: 'prompt',
    type: 'string',
    required: true,
    typeOptions: { rows: 3 },
    default: '',
    placeholder: 'e.g. a lighthouse on a cliff at sunset, oil painting',
    description: fieldSpec('prompt').description,
  },
  {
    displayName: 'Negative Prompt',
    name: 'negativePrompt',
    type: 'string',
    typeOptions: { rows: 2 },
    default: '',
    description: fieldSpec('negativePrompt').description,
  },
  {
    displayName: 'Options',
    name: 'options',
    type: 'collection',
    placeholder: 'Add Option',
    default: {},
    options: [...OPTION_FIELDS.map(fieldOption), ...NODE_OPTIONS].sort(byDisplayName),
  },
];
