import { formatCredits, type BudgetUsage } from '@sdxl-kit/client';

/**
 * One budget as a line a member or an admin reads: spent, held, left (in images at `imageCredits`,
 * the price of one image in force) and when it resets, in the reader's own time.
 */
export function describeUsage(usage: BudgetUsage, imageCredits: number | undefined): string {
  const label = usage.limit.label ?? usage.limit.id;
  const held = usage.reserved > 0 ? `, ${formatCredits(usage.reserved)} held by jobs in flight` : '';
  const images =
    imageCredits && imageCredits > 0 ? ` (about ${Math.floor(usage.left / imageCredits)} images)` : '';
  const reset = usage.resetsAt ? `; resets <t:${Math.floor(usage.resetsAt.getTime() / 1000)}:R>` : '';
  return `**${label[0]!.toUpperCase()}${label.slice(1)}**: ${formatCredits(usage.spent)} of ${formatCredits(usage.limit.credits)} credits spent${held}, ${formatCredits(usage.left)} left${images}${reset}`;
}
