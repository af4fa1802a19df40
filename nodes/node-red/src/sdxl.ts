import {
  ERROR_HINTS,
  findModel,
  type ApiChoice,
  type JobStatus,
  type PollOptions,
  type RunOptions,
  type SdxlErrorCode,
} from '@sdxl-kit/client/core';
import type { AccountNode } from './account.ts';
import { accountFor, budgetUsage } from './account-client.ts';
import { DEFAULT_MASK_PROPERTY, isOperation, modelOf, VERBS, type NodeOperation } from './operations.ts';
import { imageMessages, lowCreditsMessage, type CallResult, type OutputMode } from './output.ts';
import type { Done, NodeAPI, NodeMessage, RuntimeNode, Send } from './red.ts';
import { addImages, isResultFacts, missingPrompt, resolveInput, type NodeFieldValues } from './request.ts';
import { budgetText, doneStatus, progressStatus, type Progress } from './status.ts';

interface SdxlNodeConfig extends NodeFieldValues {
  name?: string;
  /** The id of the `sdxl-config` node. */
  account?: string;
  output?: OutputMode;
  /** What the node does with a message; flows from before there was a choice generate. */
  operation?: NodeOperation;
  /** Which Segmind API: `auto` takes the async one for models slower than 10 s. */
  api?: ApiChoice;
  /** The message property the inpaint mask comes from (no `msg.`). */
  inpaintMaskProperty?: string;
  /** Write the generation parameters into each image; flows from before the switch have them on. */
  embedParameters?: boolean;
}

/** One call under way: where it stands, and the async job's id once the API has accepted it. */
interface Call {
  phase: keyof Progress;
  /** An attempt has left for the API (so the call may be billed). */
  sent: boolean;
  requestId?: string;
  /** The operation, for what the node says when it stops waiting. */
  operation: NodeOperation;
}

/** An error as a Catch node receives it: Node-RED copies `code` into `msg.error.code`. */
class FlowError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'SdxlError';
    this.code = code;
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Ends a message with a full stop unless it has its own, so the hint after it reads as a new sentence. */
function sentence(text: string): string {
  const trimmed = text.trimEnd();
  return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** A message's own `msg.sdxl.requestId` (not a result's): the async request to pick up. */
function resumeTarget(msg: NodeMessage): { requestId: unknown; model?: string } | undefined {
  const sdxl = msg.sdxl as Record<string, unknown> | undefined;
  if (!sdxl || typeof sdxl !== 'object' || Array.isArray(sdxl) || isResultFacts(sdxl)) return undefined;
  if (sdxl.requestId === undefined || sdxl.requestId === null || sdxl.requestId === '') return undefined;
  return { requestId: sdxl.requestId, ...(typeof sdxl.model === 'string' && { model: sdxl.model }) };
}

/** What to do about a code, where this node's words say it better than the client's. */
const FLOW_HINTS: Partial<Record<SdxlErrorCode, string>> = {
  budget_exceeded: "Raise the Budget in the SDXL account's settings, or wait until it resets.",
};

/**
 * What to do about an error. A refused image or mask is fixed in the message property it came from,
 * not in a setting of the node, so the hint names that property.
 */
function hintFor(
  code: SdxlErrorCode,
  fields: { field?: string }[],
  imagesFrom: Record<string, string>,
): string {
  if (code !== 'invalid_request') return FLOW_HINTS[code] ?? ERROR_HINTS[code];
  const properties = [...new Set(fields.map(({ field }) => (field ? imagesFrom[field] : undefined)))].filter(
    (property): property is string => property !== undefined,
  );
  if (properties.length === 0) return ERROR_HINTS[code];
  const settings = fields.some(({ field }) => !field || !imagesFrom[field]);
  return `Fix the message property ${properties.join(' and ')}${settings ? ', and the option named in the message' : ''}; nothing was sent and nothing was billed.`;
}

/**
 * @param imagesFrom where each image field of the call came from (`image` → `msg.payload`), said
 *   after a refusal that names one, so the flow author knows which wire to look at.
 */
function toFlowError(error: unknown, imagesFrom: Record<string, string> = {}): FlowError {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === 'string' && code in ERROR_HINTS) {
    const fields = (error as { fields?: { field?: string }[] }).fields ?? [];
    const where = fields
      .map(({ field }) => field && imagesFrom[field] && `${field} came from ${imagesFrom[field]}`)
      .filter(Boolean);
    const from = where.length > 0 ? ` (${where.join('; ')})` : '';
    return new FlowError(
      code,
      `${sentence(error.message + from)} ${hintFor(code as SdxlErrorCode, fields, imagesFrom)}`,
    );
  }
  // Not the client's: a bug of ours. Say so rather than dressing it up as an API error.
  return new FlowError('internal', `Unexpected error in the SDXL node: ${String(error)}`);
}

/**
 * The `sdxl` node: a prompt or an image in, one message per image out (or one with all of them),
 * with a second output that fires when the account's credits fall below the threshold. The node's
 * operation says what it does: generate, vary, inpaint or upscale.
 */
export default function register(RED: NodeAPI): void {
  // settings.js may tune how async jobs are polled (`sdxlPoll: {firstDelayMs, intervalMs, …}`).
  const poll = RED.settings?.sdxlPoll as PollOptions | undefined;

  function Sdxl(this: RuntimeNode, config: SdxlNodeConfig): void {
    RED.nodes.createNode(this, config);
    const mode: OutputMode = config.output === 'array' ? 'array' : 'messages';
    const operation: NodeOperation = isOperation(config.operation) ? config.operation : 'generate';
    const api: ApiChoice = config.api === 'sync' || config.api === 'async' ? config.api : 'auto';
    const maskProperty = config.inpaintMaskProperty?.trim() || DEFAULT_MASK_PROPERTY;
    /** Each call under way, and where it stands. */
    const inFlight = new Map<AbortController, Call>();
    let closing = false;

    /** The last failure, shown until a call succeeds: on a busy node progress would hide it at once. */
    let failure: string | undefined;

    const progress = (): Progress => {
      const counts: Progress = { waiting: 0, working: 0, jobQueued: 0, processing: 0 };
      for (const call of inFlight.values()) counts[call.phase]++;
      return counts;
    };

    const showProgress = (): void => {
      const status = progressStatus(progress(), failure, VERBS[operation]);
      if (status) this.status(status);
    };

    const showFailure = (text: string): void => {
      failure = text;
      this.status(
        progressStatus(progress(), failure, VERBS[operation]) ?? { fill: 'red', shape: 'ring', text },
      );
    };

    const handle = async (msg: NodeMessage, send: Send, done: Done): Promise<void> => {
      const configNode = RED.nodes.getNode(config.account ?? '') as (AccountNode & RuntimeNode) | null;
      if (!configNode) {
        showFailure('no account');
        done(
          new FlowError('invalid_request', 'No SDXL account is set: open the node and choose or add one.'),
        );
        return;
      }
      if (!configNode.credentials.apiKey) {
        showFailure('no API key');
        done(
          new FlowError('unauthorized', 'The SDXL account has no API key: open the account and paste one.'),
        );
        return;
      }
      let account;
      try {
        account = accountFor(configNode, poll);
      } catch (error) {
        showFailure('bad account settings');
        done(
          new FlowError(
            'invalid_request',
            `The SDXL account's settings are refused: ${(error as Error).message}`,
          ),
        );
        return;
      }

      const resume = resumeTarget(msg);
      let input: Record<string, unknown> = {};
      const imagesFrom: Record<string, string> = {};
      if (!resume) {
        const resolved = resolveInput(config, msg, operation);
        input = resolved.input;
        const refused =
          missingPrompt(resolved.input, msg, operation) ??
          addImages(input, msg, operation, {
            maskProperty,
            getProperty: (message, path) => RED.util.getMessageProperty(message, path),
          })?.message;
        if (refused) {
          showFailure('invalid_request');
          done(new FlowError('invalid_request', refused));
          return;
        }
        if (resolved.ignoredCredentialKeys.length > 0) {
          this.warn(
            `Ignored msg.sdxl.${resolved.ignoredCredentialKeys.join(', msg.sdxl.')}: the API key comes from the account only.`,
          );
        }
        if (operation !== 'generate') {
          for (const field of modelOf(operation).fields) {
            if (field.kind !== 'image') continue;
            imagesFrom[field.name] =
              field.role === 'mask'
                ? `msg.${maskProperty}`
                : input[field.name] === msg.payload
                  ? 'msg.payload'
                  : `msg.sdxl.${field.name}`;
          }
        }
      }

      const controller = new AbortController();
      const call: Call = { phase: 'waiting', sent: false, operation };
      inFlight.set(controller, call);
      showProgress();
      const onStatus = (status: JobStatus): void => {
        const phase =
          status.state === 'QUEUED' ? 'jobQueued' : status.state === 'PROCESSING' ? 'processing' : undefined;
        if (!phase || call.phase === phase) return;
        call.phase = phase;
        showProgress();
      };
      try {
        let result: CallResult;
        let resultOperation = operation;
        if (resume) {
          // The job was submitted before (by this node before a restart, or elsewhere): pick it up, send nothing new.
          call.sent = true;
          call.phase = 'working';
          if (typeof resume.requestId === 'string') call.requestId = resume.requestId;
          showProgress();
          const model = resume.model ?? modelOf(operation).slug;
          result = await account.client.resume(resume.requestId as string, {
            signal: controller.signal,
            model,
            onStatus,
          });
          const resumed = findModel(result.model)?.operation;
          if (isOperation(resumed)) resultOperation = resumed;
        } else {
          const options: RunOptions = {
            signal: controller.signal,
            api,
            onAttempt: () => {
              if (call.sent) return;
              call.sent = true;
              call.phase = 'working';
              showProgress();
            },
            onRetry: ({ delayMs, error }) => {
              this.warn(`${error.message}; trying again in ${Math.ceil(delayMs / 1000)} s.`);
            },
            onSubmitted: (ticket) => {
              call.requestId = ticket.requestId;
              call.phase = 'jobQueued';
              showProgress();
            },
            onStatus,
          };
          result =
            operation === 'generate'
              ? await account.client.generate(input as never, options)
              : await account.client.run(modelOf(operation), input, options);
        }
        const budget = await budgetUsage(account);
        const threshold = account.client.lowCreditsThreshold;
        const crossed = result.lowCredits && account.lowCredits !== true;
        if (result.remainingCredits !== undefined) account.lowCredits = result.lowCredits;
        inFlight.delete(controller);
        send([
          imageMessages(RED.util, msg, result, mode, resultOperation, config.embedParameters !== false),
          crossed ? lowCreditsMessage(result, threshold) : null,
        ]);
        failure = undefined;
        if (inFlight.size === 0) this.status(doneStatus(result, budget));
        else showProgress();
        done();
      } catch (error) {
        inFlight.delete(controller);
        // Stopping or redeploying aborted it: the flow is going away, so nobody is left to tell.
        if (closing) return;
        const flowError = toFlowError(error, imagesFrom);
        const budget = flowError.code === 'budget_exceeded' ? await budgetUsage(account) : undefined;
        showFailure(budget ? `${flowError.code} (${budgetText(budget)})` : flowError.code);
        done(flowError);
      } finally {
        inFlight.delete(controller);
      }
    };

    /** Every message being handled, until its call has ended. */
    const running = new Set<Promise<void>>();

    // Exactly three parameters: Node-RED reads the arity to know this node calls done().
    this.on('input', (msg, send, done) => {
      const call = handle(msg, send, done).catch((error: unknown) => done(toFlowError(error)));
      running.add(call);
      void call.then(() => running.delete(call));
    });

    this.on('close', (_removed, done) => {
      closing = true;
      const calls = [...inFlight.values()];
      for (const controller of inFlight.keys()) controller.abort();
      // An accepted async job goes on at Segmind whether or not anyone waits: say which, so its images
      // can still be fetched (and its bill is no surprise).
      const jobs = calls.filter((call) => call.requestId !== undefined);
      for (const job of jobs) {
        this.warn(
          `Stopped waiting for SDXL ${job.operation} job ${job.requestId}: Segmind goes on with it and bills it ` +
            `unless it fails. To fetch its images within the hour, send a message with ` +
            `msg.sdxl.requestId = "${job.requestId}".`,
        );
      }
      // Nobody is told about the other calls otherwise; one that reached the API may still be billed.
      const others = calls.filter((call) => call.requestId === undefined);
      const sent = others.filter((call) => call.sent).length;
      if (sent > 0) {
        this.warn(
          `Cancelled ${plural(others.length, 'request')} in flight; ${sent} had reached the API and may have been billed.`,
        );
      } else if (others.length > 0) {
        this.log(`Cancelled ${plural(others.length, 'queued request')}; none had been sent.`);
      }
      this.status({});
      // Closed only once the aborted calls have ended: a queued call that kept its place in the account's
      // limiter would still be sent after a redeploy. Node-RED reports a close that never ends.
      void Promise.allSettled(running).then(() => done());
    });
  }

  RED.nodes.registerType('sdxl', Sdxl as never);
}
