import type {
  IDataObject,
  IExecuteFunctions,
  INodeExecutionData,
  NodeApiError,
  NodeExecutionHint,
  NodeOperationError,
} from 'n8n-workflow';
import { extensionFor, withParameters, type ModelResult } from '@sdxl-kit/client/core';
import type { OperationName } from './properties.ts';

/** How one item's images are handed on. */
export interface OutputSettings {
  /** The operation that made them: it names the files and words the agent's answer. */
  operation: OperationName;
  /** The binary field each image goes in. */
  binaryPropertyName: string;
  /** Put the image in the JSON as base64 instead of a binary file. */
  returnBase64: boolean;
  /** Below this many credits left, items say `lowCredits: true`. */
  lowCreditsThreshold: number;
  /**
   * An AI agent runs the node as a tool: n8n drops binary data from tool answers (with a warning) and
   * base64 would flood the agent's context, so the agent gets a short JSON summary only.
   */
  forAgent: boolean;
  /** Write the generation parameters into each image file (see `withParameters`). */
  embedParameters: boolean;
  /** The input image's file name, where it came from a binary field: an upscale keeps it. */
  inputFileName?: string;
}

const VERBS: Record<OperationName, string> = {
  generateImage: 'Generated',
  varyImage: 'Varied',
  inpaintImage: 'Inpainted',
  upscaleImage: 'Upscaled',
  resumeRequest: 'Fetched',
};

/** A file name that carries the seed, so a picture can be made again from its name. */
export function fileNameFor(stem: string, index: number, count: number, extension: string): string {
  return count > 1 ? `${stem}-${index + 1}.${extension}` : `${stem}.${extension}`;
}

/** The file name's stem: the seed for what SDXL drew, the input's name and the scale for an upscale. */
function stemFor(result: ModelResult, settings: OutputSettings, seed: number | undefined): string {
  switch (settings.operation) {
    case 'generateImage':
      return `sdxl-${seed}`;
    case 'upscaleImage': {
      const base = settings.inputFileName?.replace(/\.[^./]*$/, '').trim() || 'sdxl';
      return `${base}-x${String(result.request.scale ?? 2)}`;
    }
    case 'resumeRequest':
      return seed === undefined ? `sdxl-${result.requestId ?? 'result'}` : `sdxl-${seed}`;
    default: {
      const kind = settings.operation === 'varyImage' ? 'vary' : 'inpaint';
      return seed === undefined ? `sdxl-${kind}` : `sdxl-${kind}-${seed}`;
    }
  }
}

/** One output item per image, each paired with the input item it came from. */
export async function imageItems(
  context: IExecuteFunctions,
  result: ModelResult,
  itemIndex: number,
  settings: OutputSettings,
): Promise<INodeExecutionData[]> {
  const items: INodeExecutionData[] = [];
  const generate = settings.operation === 'generateImage';
  const async = result.api === 'async';
  // An agent gets no image, so nothing is written into one.
  const images = withParameters(result, result.images, {
    enabled: settings.embedParameters && !settings.forAgent,
    extra: { 'Source image': settings.inputFileName },
  });
  for (const image of images) {
    const seed = image.seed ?? result.seed;
    const fileName = fileNameFor(
      stemFor(result, settings, seed),
      image.index,
      result.images.length,
      extensionFor(image.mimeType),
    );
    const request = result.request;
    const json: IDataObject = {
      // Generate Image keeps the fields it always had; the other operations say what they did and with what.
      ...(generate
        ? {
            prompt: request.prompt as string,
            ...(request.negativePrompt ? { negativePrompt: request.negativePrompt as string } : {}),
          }
        : {
            operation: settings.operation,
            // Resume Request knows a job by its ID alone, and a result names no model: none is made up.
            ...(settings.operation !== 'resumeRequest' && { model: result.model }),
            ...(request as IDataObject),
          }),
      ...(seed !== undefined && { seed }),
      index: image.index,
      fileName,
      mimeType: image.mimeType,
      ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
      lowCredits:
        result.remainingCredits !== undefined && result.remainingCredits < settings.lowCreditsThreshold,
      ...(result.cost !== undefined && { cost: result.cost }),
      ...(result.requestId !== undefined && { requestId: result.requestId }),
      ...(result.generationTime !== undefined && { generationTime: result.generationTime }),
      ...(async && { api: 'async' }),
    };
    if (settings.forAgent) {
      const said = [fileName, ...(seed !== undefined ? [`seed ${seed}`] : [])].join(', ');
      // The client hands back the image, not the address it was fetched from: the request ID is what
      // an agent can quote (or give to Resume Request within the hour).
      const where = async && result.requestId ? ` Request ID ${result.requestId}.` : '';
      items.push({
        json: {
          message: `${VERBS[settings.operation]} image ${image.index + 1} of ${result.images.length} (${said}).${where}`,
          ...json,
        },
        pairedItem: { item: itemIndex },
      });
      continue;
    }
    if (settings.returnBase64) {
      items.push({
        json: { ...json, base64: image.bytes.toString('base64') },
        pairedItem: { item: itemIndex },
      });
      continue;
    }
    const binary = await context.helpers.prepareBinaryData(image.bytes, fileName, image.mimeType);
    items.push({
      json: { ...json, binaryField: settings.binaryPropertyName },
      binary: { [settings.binaryPropertyName]: binary },
      pairedItem: { item: itemIndex },
    });
  }
  return items;
}

/**
 * With Continue On Fail: the item that failed, with the code and message instead of images.
 *
 * For "Continue (using error output)" the item must be one n8n recognises as an error: n8n moves an
 * item to the error output only when it carries `item.error` or its JSON holds nothing but `error`,
 * `message` and `details`. An `item.error` would make n8n replace the whole JSON with `{ error }`,
 * dropping the code, so the code and hint go under `details` instead; n8n then adds the input item's
 * fields, so the failed items can be sent again as they are.
 */
export function failedItem(
  error: NodeApiError | NodeOperationError,
  code: string,
  itemIndex: number,
  toErrorOutput: boolean,
  requestId?: string,
): INodeExecutionData {
  const details: IDataObject = {
    code,
    // An async request that was submitted goes on: its ID lets Resume Request fetch the images.
    ...(requestId && { requestId }),
    ...(error.description && { description: error.description }),
    ...('httpCode' in error && error.httpCode && { httpCode: error.httpCode }),
  };
  return {
    json: toErrorOutput ? { error: error.message, details } : { error: error.message, ...details },
    pairedItem: { item: itemIndex },
  };
}

/** The warning the execution shows when the balance fell below the threshold. */
export function lowCreditsHint(credits: number, threshold: number): NodeExecutionHint {
  return {
    type: 'warning',
    location: 'outputPane',
    message: `The SDXL account has ${credits} credits left, below the Low Credit Threshold of ${threshold}. Top up soon to keep this workflow running.`,
  };
}
