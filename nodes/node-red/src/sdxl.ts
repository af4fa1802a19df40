import { ERROR_HINTS, type SdxlErrorCode } from '@sdxl-kit/client/core';
import type { AccountNode } from './account.ts';
import { accountFor } from './account-client.ts';
import { imageMessages, lowCreditsMessage, type OutputMode } from './output.ts';
import type { Done, NodeAPI, NodeMessage, RuntimeNode, Send } from './red.ts';
import { missingPrompt, resolveInput, type NodeFieldValues } from './request.ts';
import { doneStatus, progressStatus } from './status.ts';

interface SdxlNodeConfig extends NodeFieldValues {
  name?: string;
  /** The id of the `sdxl-config` node. */
  account?: string;
  output?: OutputMode;
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

function toFlowError(error: unknown): FlowError {
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof code === 'string' && code in ERROR_HINTS) {
    return new FlowError(code, `${sentence(error.message)} ${ERROR_HINTS[code as SdxlErrorCode]}`);
  }
  // Not the client's: a bug of ours. Say so rather than dressing it up as an API error.
  return new FlowError('internal', `Unexpected error in the SDXL node: ${String(error)}`);
}

/**
 * The `sdxl` node: a prompt in, one message per image out (or one with all of them), with a second
 * output that fires when the account's credits fall below the threshold.
 */
export default function register(RED: NodeAPI): void {
  function Sdxl(this: RuntimeNode, config: SdxlNodeConfig): void {
    RED.nodes.createNode(this, config);
    const mode: OutputMode = config.output === 'array' ? 'array' : 'messages';
    /** Each call under way, and whether it has been sent to the API (and so may be billed). */
    const inFlight = new Map<AbortController, { sent: boolean }>();
    let queued = 0;
    let generating = 0;
    let closing = false;

    /** The last failure, shown until a call succeeds: on a busy node progress would hide it at once. */
    let failure: string | undefined;

    const showProgress = (): void => {
      const status = progressStatus(queued, generating, failure);
      if (status) this.status(status);
    };

    const showFailure = (text: string): void => {
      failure = text;
      this.status(progressStatus(queued, generating, failure) ?? { fill: 'red', shape: 'ring', text });
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
        account = accountFor(configNode);
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
      const { input, ignoredCredentialKeys } = resolveInput(config, msg);
      const noPrompt = missingPrompt(input, msg);
      if (noPrompt) {
        showFailure('invalid_request');
        done(new FlowError('invalid_request', noPrompt));
        return;
      }
      if (ignoredCredentialKeys.length > 0) {
        this.warn(
          `Ignored msg.sdxl.${ignoredCredentialKeys.join(', msg.sdxl.')}: the API key comes from the account only.`,
        );
      }

      const controller = new AbortController();
      const call = { sent: false };
      inFlight.set(controller, call);
      queued++;
      showProgress();
      try {
        const result = await account.client.generate(input, {
          signal: controller.signal,
          onAttempt: () => {
            if (call.sent) return;
            call.sent = true;
            queued--;
            generating++;
            showProgress();
          },
          onRetry: ({ delayMs, error }) => {
            this.warn(`${error.message}; trying again in ${Math.ceil(delayMs / 1000)} s.`);
          },
        });
        const threshold = account.client.lowCreditsThreshold;
        const crossed = result.lowCredits && account.lowCredits !== true;
        if (result.remainingCredits !== undefined) account.lowCredits = result.lowCredits;
        send([
          imageMessages(RED.util, msg, result, mode),
          crossed ? lowCreditsMessage(result, threshold) : null,
        ]);
        finish();
        failure = undefined;
        if (generating === 0 && queued === 0) this.status(doneStatus(result));
        else showProgress();
        done();
      } catch (error) {
        finish();
        // Stopping or redeploying aborted it: the flow is going away, so nobody is left to tell.
        if (closing) return;
        const flowError = toFlowError(error);
        showFailure(flowError.code);
        done(flowError);
      } finally {
        inFlight.delete(controller);
      }

      function finish(): void {
        if (call.sent) generating--;
        else queued--;
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
      // Nobody is told about these calls otherwise; one that reached the API may still be billed.
      const sent = calls.filter((call) => call.sent).length;
      if (sent > 0) {
        this.warn(
          `Cancelled ${plural(calls.length, 'request')} in flight; ${sent} had reached the API and may have been billed.`,
        );
      } else if (calls.length > 0) {
        this.log(`Cancelled ${plural(calls.length, 'queued request')}; none had been sent.`);
      }
      this.status({});
      // Closed only once the aborted calls have ended: a queued call that kept its place in the account's
      // limiter would still be sent after a redeploy. Node-RED reports a close that never ends.
      void Promise.allSettled(running).then(() => done());
    });
  }

  RED.nodes.registerType('sdxl', Sdxl as never);
}
