import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where a 429 came from: the image service (Segmind) or Discord's REST API. */
export type RateLimitSource = 'segmind' | 'discord';

/** What the gauges read when Prometheus scrapes. */
export interface MetricSources {
  /** Jobs waiting in the line (on Redis, the line every copy shares). */
  waiting(): Promise<number>;
  /** Jobs this copy is running. */
  running(): number;
  /** The account's balance as this copy last heard it; undefined before it has. */
  creditsLeft(): number | undefined;
}

/**
 * This copy's metrics in Prometheus's text format, through prom-client (the Node ecosystem's client):
 * each copy serves its own, and Prometheus tells copies apart by the address it scrapes (its
 * `instance` label), so counters are this copy's alone. Node's own process metrics come with them.
 */
export class BotMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter;
  private readonly failed: Counter<'reason'>;
  private readonly seconds: Histogram;
  private readonly rateLimited: Counter<'source'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'sdxl_bot_jobs_waiting',
      help: 'Jobs waiting in line (with REDIS_URL, the line all copies share)',
      registers,
      async collect() {
        this.set(await sources.waiting());
      },
    });
    new Gauge({
      name: 'sdxl_bot_jobs_running',
      help: 'Jobs this copy is running (sent, or about to be, and not yet answered)',
      registers,
      collect() {
        this.set(sources.running());
      },
    });
    new Gauge({
      name: 'sdxl_bot_credits_left',
      help: 'The image account balance as this copy last heard it (NaN until it has)',
      registers,
      collect() {
        this.set(sources.creditsLeft() ?? Number.NaN);
      },
    });
    // The money-guards work adds the budget spent here (sdxl_bot_budget_spent), read from its Redis budget.
    this.finished = new Counter({
      name: 'sdxl_bot_jobs_finished_total',
      help: 'Jobs this copy finished with their images posted',
      registers,
    });
    this.failed = new Counter({
      name: 'sdxl_bot_jobs_failed_total',
      help: 'Jobs this copy ended without images, by reason (an API error code, cancelled, deadline, shutdown, restart, lost)',
      labelNames: ['reason'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'sdxl_bot_job_seconds',
      help: 'Seconds from a job leaving the line to its result posted, for the jobs this copy finished',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'sdxl_bot_rate_limited_total',
      help: 'Answers of 429 (too many requests) this copy received, by who sent them',
      labelNames: ['source'],
      registers,
    });
    for (const source of ['segmind', 'discord'] as const) this.rateLimited.inc({ source }, 0);
  }

  jobFinished(seconds: number | undefined): void {
    this.finished.inc();
    if (seconds !== undefined) this.seconds.observe(seconds);
  }

  jobFailed(reason: string): void {
    this.failed.inc({ reason });
  }

  rateLimitedBy(source: RateLimitSource): void {
    this.rateLimited.inc({ source });
  }

  /** The text Prometheus scrapes, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
