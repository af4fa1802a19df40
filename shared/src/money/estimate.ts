import type { ModelDeclaration } from '../models/declaration.ts';
import { windowSpan } from '../limiter.ts';
import { PriceBook, imagesAsked, roundCredits, toMicroCredits, fromMicroCredits } from './price.ts';

/** How fast calls go out: what the client's limiter allows. */
export interface Pace {
  /** Calls that may start in any window. @default no limit */
  requestsPerMinute?: number;
  /** Calls under way at once. @default 4 */
  maxInFlight?: number;
  /** The window `requestsPerMinute` counts over, in ms. @default 60000 */
  windowMs?: number;
}

/** What a run is expected to take. */
export interface Estimate {
  /** Billed calls. */
  calls: number;
  /** Images asked for. */
  images: number;
  /** Credits, or undefined when a model in the run has no known price. */
  credits: number | undefined;
  /** Seconds from the first start to the last image, at the pace, from each model's typical time. */
  seconds: number;
  /** `reported` once every price in it came from what the API billed this account. */
  basis: 'published' | 'reported' | 'mixed' | 'unknown';
}

/**
 * Adds up a run one call at a time without keeping the calls, so a plan of 10,000 prompts costs no
 * more memory than one of ten. Time is the limiter's own schedule: a call starts when the window has
 * room and a slot is free, and takes its model's seconds (what the client has seen, else typical).
 */
export class PlanEstimator {
  private calls = 0;
  private images = 0;
  private micro = 0;
  private unknownPrice = false;
  private readonly bases = new Set<'published' | 'reported'>();
  private readonly starts: number[] = [];
  private readonly slots: number[];
  private readonly limit: number;
  private readonly span: number;
  private end = 0;
  private readonly prices: PriceBook;
  private readonly secondsOf: (model: ModelDeclaration) => number;

  constructor(
    prices: PriceBook = new PriceBook(),
    pace: Pace = {},
    secondsOf: (model: ModelDeclaration) => number = (model) => model.typicalSeconds,
  ) {
    this.prices = prices;
    this.secondsOf = secondsOf;
    this.limit = pace.requestsPerMinute ?? Infinity;
    this.span = windowSpan(pace.windowMs ?? 60_000) / 1000;
    this.slots = Array.from({ length: Math.max(1, pace.maxInFlight ?? 4) }, () => 0);
  }

  /** Counts one call of `model` with these request values (camelCase). */
  add(model: ModelDeclaration, values: Readonly<Record<string, unknown>>): this {
    const images = imagesAsked(model, values);
    this.calls++;
    this.images += images;
    const credits = this.prices.costOf(model, images);
    const price = this.prices.priceOf(model);
    if (credits === undefined || !price) this.unknownPrice = true;
    else {
      this.micro += toMicroCredits(credits);
      this.bases.add(price.basis);
    }
    this.schedule(this.secondsOf(model));
    return this;
  }

  /** The estimate so far. */
  result(): Estimate {
    const basis = this.unknownPrice
      ? 'unknown'
      : this.bases.size === 2
        ? 'mixed'
        : (([...this.bases][0] ?? 'published') as 'published' | 'reported');
    return {
      calls: this.calls,
      images: this.images,
      credits: this.unknownPrice ? undefined : roundCredits(fromMicroCredits(this.micro)),
      seconds: Math.round(this.end * 10) / 10,
      basis,
    };
  }

  private schedule(seconds: number): void {
    // The earliest free slot, and the window's room: the start `limit` calls back must have left it.
    let slot = 0;
    for (let index = 1; index < this.slots.length; index++) {
      if (this.slots[index]! < this.slots[slot]!) slot = index;
    }
    let start = this.slots[slot]!;
    if (this.limit !== Infinity && this.starts.length >= this.limit) {
      start = Math.max(start, this.starts[this.starts.length - this.limit]! + this.span);
    }
    if (this.limit !== Infinity) {
      this.starts.push(start);
      if (this.starts.length > this.limit) this.starts.shift();
    }
    this.slots[slot] = start + seconds;
    this.end = Math.max(this.end, start + seconds);
  }
}

/** What one call is expected to take: images, credits and seconds. */
export function estimate(
  model: ModelDeclaration,
  values: Readonly<Record<string, unknown>>,
  pace: Pace = {},
  prices: PriceBook = new PriceBook(),
): Estimate {
  return new PlanEstimator(prices, pace).add(model, values).result();
}
