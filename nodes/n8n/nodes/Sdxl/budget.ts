import { NodeOperationError } from 'n8n-workflow';
import type { IDataObject, IExecuteFunctions, INode } from 'n8n-workflow';
import {
  MemoryBudget,
  formatCredits,
  type BudgetGuard,
  type BudgetLimit,
  type Estimate,
  type ModelDeclaration,
  type SdxlClient,
  type SdxlError,
} from '@sdxl-kit/client/core';

/** What the form calls the cap, and what refusals call it. */
export const MAX_CREDITS = 'Max Credits per Execution';

/** One billed call of the run, as the estimate counts it: the model and the request's values. */
export interface PlannedCall {
  model: ModelDeclaration;
  values: Readonly<Record<string, unknown>>;
}

/**
 * The cap the first item's options set, or undefined for none. Read from the first item, as the
 * pace is: it bounds the whole execution, not one item.
 * @throws {NodeOperationError} naming the option, the value and what is allowed.
 */
export function readMaxCredits(context: IExecuteFunctions): number | undefined {
  const options = context.getNodeParameter('options', 0, {}) as IDataObject;
  const raw = options.maxCredits;
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) return undefined;
  const credits = typeof raw === 'string' ? Number(raw.trim()) : raw;
  if (typeof credits !== 'number' || !Number.isFinite(credits) || credits < 0) {
    throw new NodeOperationError(
      context.getNode(),
      `${MAX_CREDITS}: "${String(raw)}" is not allowed; allowed: a number of credits, 0 or more`,
      { itemIndex: 0, description: 'Remove the option to set no cap. Nothing was sent.' },
    );
  }
  return credits;
}

/**
 * A fresh ledger for one execution with one cap over all of it: the client holds each call's
 * estimate against it before the call is sent, so the execution never sends a call that would pass it.
 */
export function executionBudget(maxCredits: number): BudgetGuard {
  const limit: BudgetLimit = {
    id: 'n8n-execution',
    credits: maxCredits,
    window: 'total',
    label: MAX_CREDITS,
  };
  return { ledger: new MemoryBudget(), limits: [limit] };
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * Adds up every billed call of the run before the first is sent, at the client's prices and pace.
 * @throws {NodeOperationError} when the estimate is over the cap (naming both), or when a model has
 *   no known price (a cap cannot be kept then). Nothing has been sent either way.
 */
export function checkPlan(
  node: INode,
  client: SdxlClient,
  calls: readonly PlannedCall[],
  maxCredits: number,
): Estimate {
  const planner = client.planner();
  for (const call of calls) planner.add(call.model, call.values);
  const estimate = planner.result();
  if (estimate.credits === undefined) {
    const unpriced = calls.find((call) => client.prices.priceOf(call.model) === undefined)?.model.slug;
    throw new NodeOperationError(
      node,
      `${MAX_CREDITS} cannot be kept: ${unpriced ?? 'a model of this run'} has no known price`,
      { itemIndex: 0, description: `Remove ${MAX_CREDITS} to run it without a cap. Nothing was sent.` },
    );
  }
  if (estimate.credits > maxCredits) {
    const prices =
      estimate.basis === 'published'
        ? "each model's published price"
        : 'what the API reported this account is billed';
    throw new NodeOperationError(
      node,
      `This run would cost about ${formatCredits(estimate.credits)} credits, more than ${MAX_CREDITS} (${formatCredits(maxCredits)})`,
      {
        itemIndex: 0,
        description: `${plural(estimate.calls, 'call')} for ${plural(estimate.images, 'image')}, estimated at ${prices}. Raise ${MAX_CREDITS} under Options, or send fewer items or images. Nothing was sent.`,
      },
    );
  }
  return estimate;
}

/** An item the cap refused mid-run: nothing was sent for it. */
export function budgetRefusal(node: INode, error: SdxlError, itemIndex: number, tag: string) {
  return new NodeOperationError(node, `${MAX_CREDITS} reached${tag}`, {
    itemIndex,
    description: `${error.message} The API billed earlier calls of this run more than estimated. Raise ${MAX_CREDITS} under Options to send the rest.`,
  });
}
