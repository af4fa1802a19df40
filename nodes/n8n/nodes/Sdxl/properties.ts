import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';
import {
  describeDefault,
  esrgan,
  fieldSpec,
  sdxlImg2Img,
  sdxlInpaint,
  UNKNOWN_DEFAULT,
  type FieldName,
  type FieldSpec,
  type ModelDeclaration,
  type ModelField,
} from '@sdxl-kit/client/core';

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
    displayName: 'API',
    name: 'api',
    type: 'options',
    options: [
      {
        name: 'Async (Submit, Then Poll)',
        value: 'async',
        description:
          'Submit the job, then check on it until it is done. The item keeps the request ID, so a cancelled run can be resumed.',
      },
      {
        name: 'Auto',
        value: 'auto',
        description: 'Async for models that usually take more than 10 seconds, sync for the others',
      },
      {
        name: 'Sync (One Request)',
        value: 'sync',
        description: 'Wait for the image on one open request',
      },
    ],
    default: 'auto',
    description: 'Which SDXL API the call uses',
  },
  {
    displayName: 'Embed Generation Parameters',
    name: 'embedParameters',
    type: 'boolean',
    default: true,
    description:
      "Whether to write the prompt, seed, settings and request ID into each image file, where AUTOMATIC1111's PNG Info and Civitai read them (PNG text, JPEG and WebP EXIF). Turn off to keep prompts private; the pixels are the same either way.",
  },
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
    displayName: 'Max Credits per Execution',
    name: 'maxCredits',
    type: 'number',
    typeOptions: { minValue: 0 },
    default: 1,
    description:
      'The most this node may spend in one run, in credits (1 credit is 1 US dollar; one SDXL image costs about 0.008). Before the first request the node adds up what all its items will cost and stops, sending nothing, if that is more; while it runs it sends no request that would go past it. Read from the first item.',
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

/** What each operation is called in the form, and the model it runs (none for Generate and Resume). */
export const OPERATIONS = {
  generateImage: {
    name: 'Generate Image',
    action: 'Generate an image',
    description: 'Make images from a text prompt with SDXL 1.0',
  },
  varyImage: {
    name: 'Vary Image',
    action: 'Vary an image',
    description: 'Make a variation of an input image, guided by a prompt (SDXL img2img)',
    model: sdxlImg2Img,
  },
  inpaintImage: {
    name: 'Inpaint Image',
    action: 'Inpaint an image',
    description: 'Repaint the region of an input image that a mask marks white (SDXL inpaint)',
    model: sdxlInpaint,
  },
  upscaleImage: {
    name: 'Upscale Image',
    action: 'Upscale an image',
    description: 'Enlarge an input image 2, 4 or 8 times (ESRGAN)',
    model: esrgan,
  },
  resumeRequest: {
    name: 'Resume Request',
    action: 'Resume a request',
    description:
      'Fetch the images of an async request by its request ID, after a cancelled or failed run: nothing new is submitted or billed',
  },
} as const satisfies Record<
  string,
  { name: string; action: string; description: string; model?: ModelDeclaration }
>;

export type OperationName = keyof typeof OPERATIONS;

/** The operations that run one declared model: their form is built from its declaration. */
export const MODEL_OPERATIONS = ['varyImage', 'inpaintImage', 'upscaleImage'] as const;
export type ModelOperation = (typeof MODEL_OPERATIONS)[number];

export function modelOf(operation: ModelOperation): ModelDeclaration {
  return OPERATIONS[operation].model;
}

/** Fields of a model that stand on their own in the form: images, what is required, and the negative prompt. */
export function isTopLevel(field: ModelField): boolean {
  return field.kind === 'image' || field.required === true || field.name === 'negativePrompt';
}

/** Fields of a model that go under Options. */
export function optionFieldsOf(model: ModelDeclaration): ModelField[] {
  return model.fields.filter((field) => !isTopLevel(field));
}

/** The parameter names that say where an image field comes from. */
export function imageParameterNames(field: ModelField) {
  return {
    source: `${field.name}Source`,
    binaryField: `${field.name}BinaryField`,
    url: `${field.name}Url`,
  };
}

/** The binary field an image is read from by default: `data` for the input image, its own name for the others. */
export function defaultBinaryField(field: ModelField): string {
  return field.role === 'source' ? 'data' : field.name;
}

/** What the form calls the binary field an image field is read from. */
export function binaryFieldLabel(field: ModelField): string {
  return field.role === 'source' ? 'Input Binary Field' : `${field.label} Binary Field`;
}

function describeField(field: ModelField): string {
  const range =
    field.min !== undefined && field.max !== undefined && !field.values
      ? ` From ${field.min} to ${field.max}.`
      : '';
  if (field.required) return `${field.description}${range}`;
  return `${field.description}${range} Default: ${describeDefault(field)}.`;
}

/** The entry a drop-down shows for "send nothing, let the server decide". */
const SERVER_DEFAULT: INodePropertyOptions = { name: 'Server Default (Unknown)', value: '' };

/**
 * One declared field as an n8n option. A field whose default the contract does not know sends
 * nothing until the user sets it: a number or text starts empty (shown as "unknown"), a drop-down
 * starts on "Server Default (Unknown)".
 */
export function modelFieldOption(field: ModelField): INodeProperties {
  const base = { displayName: field.label, name: field.name, description: describeField(field) };
  const known = field.default !== undefined;
  switch (field.kind) {
    case 'choice': {
      const choices = (field.values ?? [])
        .map((value): INodePropertyOptions => ({ name: String(value), value }))
        .concat(known ? [] : [SERVER_DEFAULT])
        .sort((a, b) => a.name.localeCompare(b.name));
      return {
        ...base,
        type: 'options',
        options: choices,
        default: known ? (field.default as string | number) : '',
        ...(field.open && {
          description: `${base.description} To use a value the list lacks, switch this field to Expression and type it.`,
        }),
      };
    }
    case 'boolean':
      if (known) return { ...base, type: 'boolean', default: field.default as boolean };
      return {
        ...base,
        type: 'options',
        options: [{ name: 'Off', value: false }, { name: 'On', value: true }, SERVER_DEFAULT],
        default: '',
      };
    case 'integer':
    case 'number':
      if (known) {
        return {
          ...base,
          type: 'number',
          typeOptions: {
            ...(field.min !== undefined && { minValue: field.min }),
            ...(field.max !== undefined && { maxValue: field.max }),
            numberPrecision: field.kind === 'integer' ? 0 : 2,
          },
          default: field.default as number,
        };
      }
      // n8n's number field cannot be empty: text lets "unset" mean what it says.
      return { ...base, type: 'string', default: '', placeholder: UNKNOWN_DEFAULT };
    case 'text':
    case 'image':
      return {
        ...base,
        type: 'string',
        default: (field.default as string | undefined) ?? '',
        ...(!known && !field.required && { placeholder: UNKNOWN_DEFAULT }),
      };
  }
}

/** A sentence without its final period, for a description that adds its own (as n8n's linter can see). */
function sentence(text: string): string {
  return text.replace(/[.\s]+$/, '');
}

function showFor(operation: OperationName) {
  return { displayOptions: { show: { operation: [operation] } } };
}

function imageProperties(operation: ModelOperation, field: ModelField): INodeProperties[] {
  const names = imageParameterNames(field);
  const show = showFor(operation);
  const where = (source: 'binary' | 'url') => ({
    displayOptions: { show: { operation: [operation], [names.source]: [source] } },
  });
  return [
    {
      displayName: `${field.label} Source`,
      name: names.source,
      type: 'options',
      noDataExpression: true,
      options: [
        {
          name: 'Binary Field of the Input Item',
          value: 'binary',
          description:
            'A file the previous node made or read (Read/Write Files, HTTP Request, another SDXL node)',
        },
        { name: 'URL', value: 'url', description: 'An http(s) address the API can download' },
      ],
      default: 'binary',
      description: `Where the ${field.label.toLowerCase()} comes from`,
      ...show,
    },
    {
      displayName: binaryFieldLabel(field),
      name: names.binaryField,
      type: 'string',
      required: true,
      default: defaultBinaryField(field),
      description: `The name of the input item's binary field that holds the ${field.label.toLowerCase()}. ${sentence(field.description)}.`,
      ...where('binary'),
    },
    {
      displayName: `${field.label} URL`,
      name: names.url,
      type: 'string',
      required: true,
      default: '',
      placeholder: 'e.g. https://example.com/photo.jpg',
      description: `An http(s) address of the ${field.label.toLowerCase()} (JPEG, PNG or WebP). ${sentence(field.description)}.`,
      ...where('url'),
    },
  ];
}

/** The form of one model operation, from the model's declaration: images, required fields, then Options. */
function modelProperties(operation: ModelOperation): INodeProperties[] {
  const model = modelOf(operation);
  const show = showFor(operation);
  const own: INodeProperties[] = [];
  for (const field of model.fields.filter(isTopLevel)) {
    if (field.kind === 'image') {
      own.push(...imageProperties(operation, field));
      continue;
    }
    const option = modelFieldOption(field);
    own.push({
      ...option,
      ...(field.required && { required: true }),
      ...(field.kind === 'text' && { typeOptions: { rows: field.required ? 3 : 2 } }),
      ...show,
    });
  }
  own.push({
    displayName: 'Options',
    name: 'options',
    type: 'collection',
    placeholder: 'Add Option',
    default: {},
    options: [...optionFieldsOf(model).map(modelFieldOption), ...NODE_OPTIONS].sort(byDisplayName),
    ...show,
  });
  return own;
}

/** Resume Request: the request ID, and how the images come out. */
const RESUME_PROPERTIES: INodeProperties[] = [
  {
    displayName: 'Request ID',
    name: 'requestId',
    type: 'string',
    required: true,
    default: '',
    placeholder: 'e.g. 3f1c2a9e-…',
    description:
      'The "requestId" of an async request: an item of the failed or cancelled run (its output or error item) holds it. Results are kept an hour after the submit.',
    ...showFor('resumeRequest'),
  },
  {
    displayName: 'Options',
    name: 'options',
    type: 'collection',
    placeholder: 'Add Option',
    default: {},
    options: NODE_OPTIONS.filter((option) =>
      [
        'binaryPropertyName',
        'embedParameters',
        'lowCreditsThreshold',
        'returnBase64',
        'timeoutSeconds',
      ].includes(option.name),
    ),
    ...showFor('resumeRequest'),
  },
];

/**
 * The node's parameters. Generate Image: Prompt and Negative Prompt up front, every other field under
 * Options. The model operations: their forms built from the models' declarations.
 */
export const nodeProperties: INodeProperties[] = [
  {
    displayName: 'Operation',
    name: 'operation',
    type: 'options',
    noDataExpression: true,
    options: (Object.keys(OPERATIONS) as OperationName[])
      .map((value) => {
        const { name, action, description } = OPERATIONS[value];
        return { name, value, action, description };
      })
      .sort((a, b) => a.name.localeCompare(b.name)),
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
    ...showFor('generateImage'),
  },
  {
    displayName: 'Negative Prompt',
    name: 'negativePrompt',
    type: 'string',
    typeOptions: { rows: 2 },
    default: '',
    description: fieldSpec('negativePrompt').description,
    ...showFor('generateImage'),
  },
  {
    displayName: 'Options',
    name: 'options',
    type: 'collection',
    placeholder: 'Add Option',
    default: {},
    options: [...OPTION_FIELDS.map(fieldOption), ...NODE_OPTIONS].sort(byDisplayName),
    ...showFor('generateImage'),
  },
  ...MODEL_OPERATIONS.flatMap(modelProperties),
  ...RESUME_PROPERTIES,
];
