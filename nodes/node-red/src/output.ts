import { withParameters, type GenerateResult, type ModelResult } from '@sdxl-kit/client/core';
import type { NodeOperation } from './operations.ts';
import type { NodeAPI, NodeMessage } from './red.ts';
import { formatCredits } from './status.ts';

/** `messages`: one message per image with `msg.parts`; `array`: one message with every image. */
export type OutputMode = 'messages' | 'array';

/** What a call of any operation gives back: generate's result or any other model's. */
export type CallResult = (GenerateResult & { model?: string }) | ModelResult;

/** What the call reported, shared by every message it produced. */
function callFacts(result: CallResult, operation: NodeOperation): Record<string, unknown> {
  return {
    ...(result.seed !== undefined && { seed: result.seed }),
    count: result.images.length,
    ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
    lowCredits: result.lowCredits,
    ...(result.cost !== undefined && { cost: result.cost }),
    ...(result.requestId !== undefined && { requestId: result.requestId }),
    ...(result.generationTime !== undefined && { generationTime: result.generationTime }),
    // Only beside the other operations: generate's facts stay as they always were.
    ...(operation !== 'generate' && { operation, model: result.model }),
    ...(result.api === 'async' && { api: result.api }),
    request: result.request,
  };
}

/** The facts of one image: its own seed (when it has one), place and type. */
function imageFacts(image: CallResult['images'][number]): Record<string, unknown> {
  return {
    ...(image.seed !== undefined && { seed: image.seed }),
    index: image.index,
    mimeType: image.mimeType,
  };
}

/**
 * The image messages for one call. Each is a copy of the input message, so other properties travel
 * through; the input payload (the prompt) is replaced.
 *
 * In `messages` mode: one image from a message that is part of a sequence keeps the input's
 * `msg.parts` unchanged; otherwise the images form a new sequence, nesting the input's `msg.parts`
 * (one Join gathers the images, a second one the enclosing sequence).
 *
 * With `embedParameters` (the default) each image carries its generation parameters in the file.
 */
export function imageMessages(
  util: NodeAPI['util'],
  input: NodeMessage,
  called: CallResult,
  mode: OutputMode,
  operation: NodeOperation = 'generate',
  embedParameters = true,
): NodeMessage[] {
  // The file the input image came from (a File In node sets msg.filename), by name only.
  const source = operation === 'generate' ? undefined : fileName(input.filename);
  const result = {
    ...called,
    images: withParameters(called, called.images, {
      enabled: embedParameters,
      extra: { 'Source image': source },
    }),
  } as CallResult;
  // Copy everything but the payload once, rather than deep-cloning the prompt with every image.
  const base: NodeMessage = { ...input };
  delete base.payload;
  delete base._msgid;
  const facts = callFacts(result, operation);

  if (mode === 'array') {
    const message = util.cloneMessage(base);
    message.payload = result.images.map((image) => image.bytes);
    message.sdxl = {
      ...facts,
      images: result.images.map(imageFacts),
    };
    return [message];
  }

  // One image stands in for its prompt, so it keeps the prompt's place: Split → sdxl → Join rebuilds
  // the array, as it does around change or function nodes, which pass msg.parts through.
  if (result.images.length === 1 && input.parts) {
    const [image] = result.images as [CallResult['images'][number]];
    const message = util.cloneMessage(base);
    message._msgid = util.generateId();
    message.payload = image.bytes;
    message.sdxl = { ...facts, ...imageFacts(image) };
    return [message];
  }

  const id = util.generateId();
  const count = result.images.length;
  return result.images.map((image) => {
    const message = util.cloneMessage(base);
    // The clone's, not input.parts: a message must share no object with the input or its siblings.
    const enclosing = message.parts;
    // One send() would give every copy the same _msgid; each image is a message of its own.
    message._msgid = util.generateId();
    message.payload = image.bytes;
    message.parts = {
      id,
      index: image.index,
      count,
      type: 'array',
      len: 1,
      // Like Split: an enclosing sequence is kept, and Join restores it.
      ...(enclosing && { parts: enclosing }),
    };
    message.sdxl = { ...facts, ...imageFacts(image) };
    return message;
  });
}

function fileName(value: unknown): string | undefined {
  return typeof value === 'string' ? value.split(/[\\/]/).filter(Boolean).at(-1) : undefined;
}

/** The message on the second output when the balance drops below the threshold. */
export function lowCreditsMessage(result: CallResult, threshold: number): NodeMessage {
  const remaining = result.remainingCredits ?? 0;
  return {
    topic: 'sdxl/low-credits',
    payload: `SDXL credits are low: ${formatCredits(remaining)} left, below the threshold of ${threshold}.`,
    sdxl: {
      remainingCredits: remaining,
      threshold,
      lowCredits: true,
      ...(result.requestId !== undefined && { requestId: result.requestId }),
    },
  };
}
