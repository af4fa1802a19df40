// First: zod must be set to make no code from strings before the client's schemas are made.
import './zod-jitless.ts';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';
import type {
  ICredentialTestFunctions,
  ICredentialsDecrypted,
  IDataObject,
  IExecuteFunctions,
  INodeCredentialTestResult,
  INodeExecutionData,
  INodeType,
  INodeTypeDescription,
} from 'n8n-workflow';
import {
  SdxlClient,
  fieldSpec,
  parseModelRequest,
  sdxlTxt2Img,
  type ApiChoice,
  type FieldName,
  type GenerateInput,
  type ModelResult,
  type PollOptions,
  type RunOptions,
} from '@sdxl-kit/client/core';
import { errorCode, resumeAdvice, toNodeError, type ErrorWording } from './errors.ts';
import { failedItem, imageItems, lowCreditsHint, type OutputSettings } from './output.ts';
import {
  NODE_DEFAULTS,
  OPERATIONS,
  OPTION_FIELDS,
  modelOf,
  nodeProperties,
  type OperationName,
} from './properties.ts';
import { readModelInput } from './model-input.ts';
import { sharedJobTimes, sharedLimiter } from './limiters.ts';
import { CREDENTIAL_TYPE, abortableSleep, createN8nTransport, executeRequester } from './transport.ts';
import { testCredential } from './credential-test.ts';
import { checkPlan, executionBudget, readMaxCredits, type PlannedCall } from './budget.ts';

interface SdxlCredentials {
  apiKey: string;
  baseUrl?: string;
}

/** One item's request and how its output is shaped. */
interface Job {
  itemIndex: number;
  /**
   * Checks the request without sending anything (throws the client's InvalidRequestError) and says
   * what the call will be billed for; undefined for a call that bills nothing.
   */
  check: (client: SdxlClient) => PlannedCall | undefined;
  call: (client: SdxlClient, options: RunOptions) => Promise<ModelResult>;
  output: OutputSettings;
  /** How its errors name fields; `submitted` is set once an async request was accepted. */
  wording: ErrorWording;
  api: ApiChoice;
}

type Outcome = { ok: true; result: ModelResult } | { ok: false; error: unknown };

const API_CHOICES: readonly ApiChoice[] = ['auto', 'sync', 'async'];
/** The request IDs the async API hands out: what Resume Request accepts. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * An option as the contract wants it. Expressions over data from a Webhook, a sheet or a CSV give
 * text, so a number field may hold "42" and a switch "true": those are read as what they say.
 * Anything else is passed on as it is, for the client to refuse by name.
 */
function typedOption(name: FieldName, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  const kind = fieldSpec(name).kind;
  if ((kind === 'integer' || kind === 'number') && text !== '') {
    const number = Number(text);
    return Number.isFinite(number) ? number : value;
  }
  if (kind === 'boolean' && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  return value;
}

async function readJob(
  context: IExecuteFunctions,
  items: INodeExecutionData[],
  itemIndex: number,
  operation: OperationName,
  asTool: boolean,
): Promise<Job> {
  const options = context.getNodeParameter('options', itemIndex, {}) as IDataObject;
  const tagItem = operation !== 'generateImage';
  const binaryPropertyName = String(options.binaryPropertyName ?? NODE_DEFAULTS.binaryPropertyName).trim();
  if (!binaryPropertyName) {
    throw new NodeOperationError(
      context.getNode(),
      `Put Output in Field is empty${tagItem ? ` [item ${itemIndex}]` : ''}`,
      { itemIndex, description: 'Give the binary field a name, such as "data".' },
    );
  }
  const api = String(options.api ?? 'auto').trim() as ApiChoice;
  if (!API_CHOICES.includes(api)) {
    throw new NodeOperationError(
      context.getNode(),
      `API: "${String(options.api)}" is not allowed; allowed: auto, sync or async [item ${itemIndex}]`,
      { itemIndex, description: 'Nothing was sent.' },
    );
  }
  const output: OutputSettings = {
    operation,
    binaryPropertyName,
    returnBase64:
      options.returnBase64 === true || String(options.returnBase64).trim().toLowerCase() === 'true',
    forAgent: asTool,
    // On unless switched off: an expression may give the text "false".
    embedParameters: !(
      options.embedParameters === false || String(options.embedParameters).trim() === 'false'
    ),
    lowCreditsThreshold: Number(options.lowCreditsThreshold ?? NODE_DEFAULTS.lowCreditsThreshold),
  };

  if (operation === 'generateImage') {
    const input: Record<string, unknown> = {
      prompt: context.getNodeParameter('prompt', itemIndex, '') as string,
      negativePrompt: context.getNodeParameter('negativePrompt', itemIndex, '') as string,
    };
    for (const name of OPTION_FIELDS) {
      if (options[name] !== undefined) input[name] = typedOption(name, options[name]);
    }
    return {
      itemIndex,
      api,
      output,
      wording: { operation },
      check: (client) => ({ model: sdxlTxt2Img, values: client.validate(input as GenerateInput) }),
      call: async (client, runOptions) =>
        (await client.generate(input as GenerateInput, runOptions)) as unknown as ModelResult,
    };
  }

  if (operation === 'resumeRequest') {
    const requestId = String(context.getNodeParameter('requestId', itemIndex, '') ?? '').trim();
    if (!REQUEST_ID.test(requestId)) {
      throw new NodeOperationError(
        context.getNode(),
        `Request ID: "${requestId.slice(0, 60)}" is not a request ID [item ${itemIndex}]`,
        {
          itemIndex,
          description:
            'Give the "requestId" an item of the earlier run holds (letters, digits, - and _). Nothing was sent.',
        },
      );
    }
    return {
      itemIndex,
      api,
      output,
      wording: { operation, tagItem, submitted: requestId },
      check: () => undefined,
      call: async (client, runOptions) => await client.resume(requestId, runOptions),
    };
  }

  const model = modelOf(operation);
  const { input, labels, places, inputFileName } = await readModelInput(context, items, itemIndex, model);
  return {
    itemIndex,
    api,
    output: { ...output, ...(inputFileName !== undefined && { inputFileName }) },
    wording: { operation, labels, places, tagItem },
    check: () => ({ model, values: parseModelRequest(model, input).values }),
    call: async (client, runOptions) => await client.run(model, input, runOptions),
  };
}

/** Settings shared by every item of one run (one client, one limiter), read from the first item. */
function readRunSettings(context: IExecuteFunctions) {
  const options = context.getNodeParameter('options', 0, {}) as IDataObject;
  const settings = {
    requestsPerMinute: Number(options.requestsPerMinute ?? NODE_DEFAULTS.requestsPerMinute),
    maxInFlight: Number(options.maxInFlight ?? NODE_DEFAULTS.maxInFlight),
    timeoutMs: Number(options.timeoutSeconds ?? NODE_DEFAULTS.timeoutSeconds) * 1000,
  };
  const invalid = [
    !(settings.requestsPerMinute > 0) && `Requests per Minute: "${String(options.requestsPerMinute)}"`,
    !(Number.isInteger(settings.maxInFlight) && settings.maxInFlight >= 1) &&
      `Images in Flight: "${String(options.maxInFlight)}"`,
    !(settings.timeoutMs > 0) && `Timeout (Seconds): "${String(options.timeoutSeconds)}"`,
  ].filter(Boolean);
  if (invalid.length > 0) {
    throw new NodeOperationError(context.getNode(), `${invalid.join(', ')} is not allowed`, {
      itemIndex: 0,
      description:
        'Requests per Minute, Images in Flight and Timeout take positive numbers (Images in Flight a whole one).',
    });
  }
  return settings;
}

export class Sdxl implements INodeType {
  /**
   * The window Requests per Minute counts over, in ms. Only tests change it, to run a paced batch in
   * seconds rather than minutes; it is not a parameter, so no workflow can.
   * @internal
   */
  static rateWindowMs = 60_000;

  /**
   * How the async API is polled, over the client's defaults (the first check at about half the
   * model's usual time, then every 0.5 s growing to 4 s). Only tests change it.
   * @internal
   */
  static pollOptions: PollOptions = {};

  description: INodeTypeDescription = {
    displayName: 'SDXL',
    name: 'sdxl',
    icon: { light: 'file:sdxl.svg', dark: 'file:sdxl.dark.svg' },
    group: ['transform'],
    version: 1,
    subtitle: `={{${JSON.stringify(
      Object.fromEntries(Object.entries(OPERATIONS).map(([value, { name }]) => [value, name])),
    )}[$parameter["operation"]]}}`,
    description: 'Generate, vary, inpaint and upscale images with Stable Diffusion XL (Segmind hosted API)',
    defaults: { name: 'SDXL' },
    usableAsTool: true,
    inputs: [NodeConnectionTypes.Main],
    outputs: [NodeConnectionTypes.Main],
    credentials: [{ name: 'sdxlApi', required: true, testedBy: 'sdxlApiCredentialTest' }],
    properties: nodeProperties,
  };

  methods = {
    credentialTest: {
      async sdxlApiCredentialTest(
        this: ICredentialTestFunctions,
        credential: ICredentialsDecrypted,
      ): Promise<INodeCredentialTestResult> {
        return await testCredential(this, credential);
      },
    },
  };

  async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
    const items = this.getInputData();
    const node = this.getNode();
    const asTool = node.type.endsWith('Tool');
    const continueOnFail = this.continueOnFail();
    const toErrorOutput = node.onError === 'continueErrorOutput';
    const credentials = (await this.getCredentials(CREDENTIAL_TYPE)) as unknown as SdxlCredentials;
    const run = readRunSettings(this);
    const maxCredits = readMaxCredits(this);

    // One client for the whole run; its limiter is the account's, shared with every other execution
    // in this n8n process, so items, loop iterations and parallel workflows keep one pace.
    const client = new SdxlClient({
      transport: createN8nTransport(executeRequester(this)),
      sleep: abortableSleep,
      ...(credentials.baseUrl && { baseUrl: credentials.baseUrl }),
      // The credential adds the key to each request; the client only needs it to redact it.
      secrets: [credentials.apiKey],
      limiter: sharedLimiter({
        apiKey: credentials.apiKey,
        baseUrl: credentials.baseUrl,
        requestsPerMinute: run.requestsPerMinute,
        maxInFlight: run.maxInFlight,
        windowMs: Sdxl.rateWindowMs,
      }),
      // The client's deadline starts at an item's first attempt and its retries go to the front of
      // the line, so a run paced over many minutes does not use it up; its default bounds each item.
      timeoutMs: run.timeoutMs,
      // An async job is waited for as long as one call may take; past that the item keeps its request ID.
      poll: { timeoutMs: run.timeoutMs, ...Sdxl.pollOptions },
      // What one run learns of a model's job time, the next run polls by.
      jobTimes: sharedJobTimes,
      // One ledger per execution: every call holds its estimate against the cap before it is sent.
      ...(maxCredits !== undefined && { budget: executionBudget(maxCredits) }),
    });

    const results: INodeExecutionData[][] = items.map(() => []);
    const jobs: Job[] = [];
    const planned: PlannedCall[] = [];
    // Every item is checked before the first request, so a typo in item 50 costs nothing.
    for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
      let wording: ErrorWording = {};
      try {
        const operation = this.getNodeParameter('operation', itemIndex, 'generateImage') as OperationName;
        if (!Object.hasOwn(OPERATIONS, operation)) {
          throw new NodeOperationError(node, `Operation: "${String(operation)}" is not known`, { itemIndex });
        }
        if (operation !== 'generateImage') wording = { operation, tagItem: true };
        const job = await readJob(this, items, itemIndex, operation, asTool);
        wording = job.wording;
        const billed = job.check(client);
        if (billed) planned.push(billed);
        jobs.push(job);
      } catch (error) {
        const nodeError = toNodeError(node, error, itemIndex, items.length, wording);
        if (!continueOnFail) throw nodeError;
        results[itemIndex] = [failedItem(nodeError, errorCode(error), itemIndex, toErrorOutput)];
      }
    }

    // The whole run is priced before its first call: a cap it would pass costs nothing.
    if (maxCredits !== undefined) checkPlan(node, client, planned, maxCredits);

    const cancelled = this.getExecutionCancelSignal();
    const stopRun = new AbortController();
    const signal = cancelled ? AbortSignal.any([cancelled, stopRun.signal]) : stopRun.signal;
    let firstFailure: { job: Job; error: unknown } | undefined;

    // Workers, as many as may be in flight, take items in order; the client's limiter paces their
    // starts. A worker takes nothing new once the run has failed, so no credit goes on a lost run.
    const outcomes: (Outcome | undefined)[] = [];
    let nextJob = 0;
    const worker = async () => {
      while (nextJob < jobs.length && !signal.aborted) {
        const position = nextJob++;
        const job = jobs[position] as Job;
        try {
          const result = await job.call(client, {
            signal,
            api: job.api,
            // Kept before the first poll: whatever happens next, the item can say how to resume.
            onSubmitted: (ticket) => {
              job.wording.submitted = ticket.requestId;
            },
          });
          outcomes[position] = { ok: true, result };
        } catch (error) {
          outcomes[position] = { ok: false, error };
          if (!continueOnFail && !firstFailure && !signal.aborted) {
            firstFailure = { job, error };
            stopRun.abort();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(run.maxInFlight, jobs.length) }, worker));

    if (cancelled?.aborted) {
      // A submitted async job goes on after the cancel (and is billed): say where to find its images.
      const submitted = jobs
        .filter((job) => job.wording.submitted)
        .map((job) => `item ${job.itemIndex}: ${job.wording.submitted}`);
      throw new NodeOperationError(node, 'The execution was cancelled', {
        ...(submitted.length > 0 && { description: resumeAdvice(`(${submitted.join('; ')})`) }),
      });
    }
    if (firstFailure) {
      const { job, error } = firstFailure;
      throw toNodeError(node, error, job.itemIndex, items.length, job.wording);
    }

    let lowest: { credits: number; threshold: number } | undefined;
    for (const [position, job] of jobs.entries()) {
      const outcome = outcomes[position];
      if (!outcome) continue;
      if (!outcome.ok) {
        results[job.itemIndex] = [
          failedItem(
            toNodeError(node, outcome.error, job.itemIndex, items.length, job.wording),
            errorCode(outcome.error),
            job.itemIndex,
            toErrorOutput,
            job.wording.submitted,
          ),
        ];
        continue;
      }
      results[job.itemIndex] = await imageItems(this, outcome.result, job.itemIndex, job.output);
      const credits = outcome.result.remainingCredits;
      if (
        credits !== undefined &&
        credits < job.output.lowCreditsThreshold &&
        !(lowest && lowest.credits <= credits)
      ) {
        lowest = { credits, threshold: job.output.lowCreditsThreshold };
      }
    }
    if (lowest) this.addExecutionHints(lowCreditsHint(lowest.credits, lowest.threshold));
    return [results.flat()];
  }
}
