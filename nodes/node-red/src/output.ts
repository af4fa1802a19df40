import type { GenerateResult } from '@sdxl-kit/client/core';
import type { NodeAPI, NodeMessage } from './red.ts';
import { formatCredits } from './status.ts';

/** `messages`: one message per image with `msg.parts`; `array`: one message with every image. */
export type OutputMode = 'messages' | 'array';

/** What the call reported, shared by every message it produced. */
function callFacts(result: GenerateResult): Record<string, unknown> {
  return {
    seed: result.seed,
    count: result.images.length,
    ...(result.remainingCredits !== undefined && { remainingCredits: result.remainingCredits }),
    lowCredits: result.lowCredits,
    ...(result.cost !== undefined && { cost: result.cost }),
    ...(result.requestId !== undefined && { requestId: result.requestId }),
    ...(result.generationTime !== undefined && { generationTime: result.generationTime }),
    request: result.request,
  };
}

/**
 * The image messages for one call. Each is a copy of the input message, so other properties travel
 * through; the input payload (the prompt) is replaced.
 *
 * In `messages` mode: one image from a message that is part of a sequence keeps the input's
 * `msg.parts` unchanged; otherwise the images form a new sequence, nesting the input's `msg.parts`
 * (one Join gathers the images, a second one the enclosing sequence).
 */
export function imageMessages(
  util: NodeAPI['util'],
  input: NodeMessage,
  result: GenerateResult,
  mode: OutputMode,
): NodeMessage[] {
  // Copy everything but the payload once, rather than deep-cloning the prompt with every image.
  const base: NodeMessage = { ...input };
  delete base.payload;
  delete base._msgid;
  const facts = callFacts(result);

  if (mode === 'array') {
    const message = util.cloneMessage(base);
    message.payload = result.images.map((image) => image.bytes);
    message.sdxl = {
      ...facts,
      images: result.images.map(({ seed, index, mimeType }) => ({ seed, index, mimeType })),
    };
    return [message];
  }

  // One image stands in for its prompt, so it keeps the prompt's place: Split → sdxl → Join rebuilds
  // the array, as it does around change or function nodes, which pass msg.parts through.
  if (result.images.length === 1 && input.parts) {
    const [image] = result.images as [GenerateResult['images'][number]];
    const message = util.cloneMessage(base);
    message._msgid = util.generateId();
    message.payload = image.bytes;
    message.sdxl = { ...facts, seed: image.seed, index: image.index, mimeType: image.mimeType };
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
    message.sdxl = { ...facts, seed: image.seed, index: image.index, mimeType: image.mimeType };
    return message;
  });
}

/** The message on the second output when the balance drops below the threshold. */
export function lowCreditsMessage(result: GenerateResult, threshold: number): NodeMessage {
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
