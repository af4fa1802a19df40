import type {
  IDataObject,
  IExecuteFunctions,
  INodeExecutionData,
  NodeApiError,
  NodeExecutionHint,
  NodeOperationError,
} from 'n8n-workflow';
import { extensionFor, type GenerateResult } from '@sdxl-kit/client/core';

/** How one item's images are handed on. */
export interface OutputSettings {
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
}

/** A file name that carries the seed, so a picture can be made again from its name. */
export function fileNameFor(seed: number, index: number, count: number, extension: string): string {
  return count > 1 ? `sdxl-${seed}-${index + 1}.${extension}` : `sdxl-${seed}.${extension}`;
}

/** One output item per image, each paired with the input item it came from. */
export async function imageItems(
  context: IExecuteFunctions,
  result: GenerateResult,
  itemIndex: number,
  settings: OutputSettings,
): Promise<INodeExecutionData[]> {
  const items: INodeExecutionData[] = [];
  for (const image of result.images) {
    const fileName = fileNameFor(image.seed, image.index, result.images.length, extensionFor(image.mimeType));
    const json: IDataObject = {
      prompt: result.request.prompt,
      ...(result.request.negativePrompt && { negativePrompt: result.request.negativePrompt }),
      seed: image.seed,
      index: image.index,
      fileName,
      mimeType: image.mimeType,
      ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
      lowCredits:
        result.remainingCredits !== undefined && result.remainingCredits < settings.lowCreditsThreshold,
      ...(result.cost !== undefined && { cost: result.cost }),
      ...(result.requestId !== undefined && { requestId: result.requestId }),
      ...(result.generationTime !== undefined && { generationTime: result.generationTime }),
    };
    if (settings.forAgent) {
      items.push({
        json: {
          message: `Generated image ${image.index + 1} of ${result.images.length} (${fileName}, seed ${image.seed}).`,
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
): INodeExecutionData {
  const details: IDataObject = {
    code,
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
