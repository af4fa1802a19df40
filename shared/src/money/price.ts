import type { ModelDeclaration } from '../models/declaration.ts';

/**
 * What a model costs, as Segmind publishes it. Segmind's credits are US dollars, so a price in
 * dollars is a price in credits.
 */
export interface ModelPrice {
  /** Credits for one image (`per: 'image'`) or one call (`per: 'call'`). */
  readonly credits: number;
  /**
   * `image`: each image asked for (the model's count field, `samples`) is billed this much, so a
   * call of four costs four times as much; `call`: a call costs this whatever it returns.
   */
  readonly per: 'image' | 'call';
  /** Where the figure comes from, so a reader can check it. */
  readonly source: string;
}

/** A price in force: the published one, or what the API reported for this account. */
export interface PriceInForce {
  readonly credits: number;
  readonly per: 'image' | 'call';
  readonly basis: 'published' | 'reported';
}

/** How many images a request asks for: its count field (`samples`), else its default, else one. */
export function imagesAsked(model: ModelDeclaration, values: Readonly<Record<string, unknown>>): number {
  const countField = model.output.countField;
  if (!countField) return 1;
  const given = values[countField] ?? model.fields.find((field) => field.name === countField)?.default;
  const count = Number(given ?? 1);
  return Number.isInteger(count) && count > 0 ? count : 1;
}

/** How many reports of a model's price are kept; the highest of them is the price in force. */
const REPORTS_KEPT = 8;

/**
 * The prices in force, one book per client: each model's published price until the API reports
 * what a call of it cost this account (the async job's `metrics.cost`, v1's `x-cost`, or the drop
 * in remaining credits), then the reported one. The highest of the last few reports is used, so an
 * estimate errs on the side of the budget when a price varies with the work (GPU time).
 */
export class PriceBook {
  private readonly reports = new Map<string, number[]>();
  private readonly listeners = new Set<() => void>();

  /**
   * @param reported what earlier runs were billed (`reported()` of their book), so a new process's
   *   first estimate is the account's price rather than the published one; unusable figures are dropped.
   */
  constructor(reported: Readonly<Record<string, readonly unknown[]>> = {}) {
    for (const [slug, figures] of Object.entries(reported)) {
      if (!Array.isArray(figures)) continue;
      const usable = figures.filter(
        (figure): figure is number => typeof figure === 'number' && Number.isFinite(figure) && figure >= 0,
      );
      if (usable.length > 0) this.reports.set(slug, usable.slice(-REPORTS_KEPT));
    }
  }

  /** Records what a call that asked for `images` images was billed. */
  observe(model: ModelDeclaration, images: number, cost: number): void {
    if (!Number.isFinite(cost) || cost < 0 || images < 1) return;
    const unit = model.price?.per === 'call' ? cost : cost / images;
    const kept = this.reports.get(model.slug) ?? [];
    kept.push(unit);
    if (kept.length > REPORTS_KEPT) kept.shift();
    this.reports.set(model.slug, kept);
    for (const listener of this.listeners) listener();
  }

  /** What the API reported per model slug (per image or per call, newest last): what a host keeps. */
  reported(): Record<string, number[]> {
    return Object.fromEntries([...this.reports].map(([slug, kept]) => [slug, [...kept]]));
  }

  /** Calls `listener` after each report is recorded; returns what stops it. */
  onReport(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The price in force, or undefined when the model publishes none and the API reported none. */
  priceOf(model: ModelDeclaration): PriceInForce | undefined {
    const kept = this.reports.get(model.slug);
    const per = model.price?.per ?? (model.output.countField ? 'image' : 'call');
    if (kept && kept.length > 0) return { credits: Math.max(...kept), per, basis: 'reported' };
    if (!model.price) return undefined;
    return { credits: model.price.credits, per, basis: 'published' };
  }

  /** What a call of `model` asking for `images` images is expected to cost, or undefined when unknown. */
  costOf(model: ModelDeclaration, images: number): number | undefined {
    const price = this.priceOf(model);
    if (!price) return undefined;
    return roundCredits(price.per === 'image' ? price.credits * images : price.credits);
  }
}

/** Credits to the micro-credit: what budgets count in, so sums do not drift. */
export function toMicroCredits(credits: number): number {
  return Math.round(credits * 1_000_000);
}

/** Micro-credits back to credits. */
export function fromMicroCredits(micro: number): number {
  return micro / 1_000_000;
}

/** Rounds credits to the micro-credit. */
export function roundCredits(credits: number): number {
  return fromMicroCredits(toMicroCredits(credits));
}
