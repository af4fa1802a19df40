/**
 * Discord's REST rate limits, for the stand-in to enforce when asked
 * (https://docs.discord.com/developers/topics/rate-limits): per-route buckets counted per top-level
 * resource (a channel, or a webhook id with its token, which is what an interaction's follow-ups and
 * edits go through), and the global limit on every request made with the bot token, which interaction
 * endpoints are not bound by. Every limited answer carries the `X-RateLimit-*` headers a client paces
 * itself by; a request over a limit is answered 429 with `Retry-After` and the JSON body Discord sends.
 *
 * Discord publishes only the global figure (50 requests a second); the per-route figures are what bots
 * observe and what discord.js users meet, and Discord may change them, so each is an option.
 */

/** How many requests a bucket admits per window. */
export interface BucketLimit {
  limit: number;
  windowMs: number;
}

/** The limits the stand-in enforces; each defaults to the figure below. */
export interface RateLimitSettings {
  /** Every request made with the bot token, interaction endpoints excepted. @default 50 per 1 s */
  global: BucketLimit;
  /**
   * An interaction's webhook (`/webhooks/{application}/{token}/…`): its follow-ups, edits of the reply
   * and deletes share one bucket per token, as a webhook's executions do. @default 5 per 2 s
   */
  interactionWebhook: BucketLimit;
  /** Messages created in one channel with the bot token (`POST /channels/{id}/messages`). @default 5 per 5 s */
  channelMessages: BucketLimit;
  /**
   * Messages webhooks create in one channel: an interaction's follow-ups (`POST /webhooks/{application}/{token}`)
   * count here as well as in their token's bucket. @default 30 per 60 s
   */
  channelWebhookMessages: BucketLimit;
  /** Edits of messages in one channel (`PATCH /channels/{id}/messages/{message}`). @default 5 per 5 s */
  channelMessageEdits: BucketLimit;
}

export const DISCORD_RATE_LIMITS: RateLimitSettings = {
  global: { limit: 50, windowMs: 1_000 },
  interactionWebhook: { limit: 5, windowMs: 2_000 },
  channelMessages: { limit: 5, windowMs: 5_000 },
  channelWebhookMessages: { limit: 30, windowMs: 60_000 },
  channelMessageEdits: { limit: 5, windowMs: 5_000 },
};

/** A 429 the stand-in answered. */
export interface RateLimitHit {
  at: number;
  method: string;
  /** The path with any interaction token replaced by `:token`. */
  path: string;
  /** `user` for a route's bucket, `global` for the global limit. */
  scope: 'user' | 'global';
  /** The bucket's name as sent in `X-RateLimit-Bucket` (the global limit has none). */
  bucket?: string;
  /** The resource counted: a channel id or an interaction token. */
  resource?: string;
  /** The interaction token of a webhook route, whichever bucket refused it (for a test to match a job's own). */
  interactionToken?: string;
  retryAfterMs: number;
}

/** What a request meets: go ahead (with the headers to send), or a 429. */
export type RateLimitVerdict =
  | { limited: false; headers: Record<string, string> }
  | { limited: true; headers: Record<string, string>; body: Record<string, unknown>; hit: RateLimitHit };

interface Window {
  count: number;
  resetAt: number;
}

/** A request as the limits see it: the method, the path's parts below `/api/v10`, and its credential. */
export interface LimitedRequest {
  method: string;
  parts: readonly string[];
  /** Made with the bot token (not an interaction token): counted against the global limit. */
  bot: boolean;
  applicationId: string;
  /** The channel an interaction's follow-up would create its message in. */
  channelId?: string;
}

interface Bucket {
  name: string;
  resource: string;
  limit: BucketLimit;
}

/** The buckets a request counts in, each per its top-level resource; none for unlimited routes. */
function bucketsOf(request: LimitedRequest, settings: RateLimitSettings): Bucket[] {
  const { method, parts } = request;
  if (parts[0] === 'webhooks' && parts[1] === request.applicationId && parts[2]) {
    const token: Bucket = {
      name: 'interaction-webhook',
      resource: parts[2],
      limit: settings.interactionWebhook,
    };
    // A follow-up is a message a webhook creates in the channel.
    if (method === 'POST' && parts.length === 3 && request.channelId) {
      const channel = {
        name: 'channel-webhook-messages',
        resource: request.channelId,
        limit: settings.channelWebhookMessages,
      };
      return [token, channel];
    }
    return [token];
  }
  if (parts[0] === 'channels' && parts[1] && parts[2] === 'messages') {
    if (method === 'POST' && parts.length === 3)
      return [{ name: 'channel-messages', resource: parts[1], limit: settings.channelMessages }];
    if (method === 'PATCH' && parts.length === 4)
      return [{ name: 'channel-message-edits', resource: parts[1], limit: settings.channelMessageEdits }];
  }
  return [];
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

/** Fixed windows, as Discord's buckets reset: counted from a bucket's first request, emptied at its reset. */
export class DiscordRateLimits {
  readonly settings: RateLimitSettings;
  /** Every 429 answered, in order. */
  readonly hits: RateLimitHit[] = [];
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;

  constructor(settings: Partial<RateLimitSettings> = {}, now: () => number = Date.now) {
    this.settings = { ...DISCORD_RATE_LIMITS, ...settings };
    this.now = now;
  }

  /**
   * Counts a request against its limits; the verdict says whether it may go ahead. A refused request
   * counts in none of them. The headers describe the route's first bucket.
   */
  take(request: LimitedRequest): RateLimitVerdict {
    const now = this.now();
    // Interaction callbacks go through once each and, like the interaction webhooks, are not bound by the
    // global limit.
    if (request.parts[0] === 'interactions') return { limited: false, headers: {} };
    const global = request.bot ? this.window('global', this.settings.global, now) : undefined;
    if (global && global.count >= this.settings.global.limit) {
      return this.refuse(
        request,
        now,
        { scope: 'global', retryAfterMs: global.resetAt - now },
        {
          'x-ratelimit-global': 'true',
          'x-ratelimit-scope': 'global',
        },
      );
    }
    const buckets = bucketsOf(request, this.settings).map((bucket) => ({
      bucket,
      window: this.window(`${bucket.name}:${bucket.resource}`, bucket.limit, now),
    }));
    const headersOf = ({ bucket, window }: (typeof buckets)[number], remaining: number) => ({
      'x-ratelimit-limit': String(bucket.limit.limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': seconds(window.resetAt),
      'x-ratelimit-reset-after': seconds(window.resetAt - now),
      'x-ratelimit-bucket': bucket.name,
    });
    const full = buckets.find(({ bucket, window }) => window.count >= bucket.limit.limit);
    if (full) {
      const { bucket, window } = full;
      return this.refuse(
        request,
        now,
        { scope: 'user', bucket: bucket.name, resource: bucket.resource, retryAfterMs: window.resetAt - now },
        { ...headersOf(full, 0), 'x-ratelimit-scope': 'user' },
      );
    }
    for (const { window } of buckets) window.count++;
    if (global) global.count++;
    const first = buckets[0];
    return {
      limited: false,
      headers: first ? headersOf(first, first.bucket.limit.limit - first.window.count) : {},
    };
  }

  private window(key: string, limit: BucketLimit, now: number): Window {
    let window = this.windows.get(key);
    if (!window || now >= window.resetAt) {
      window = { count: 0, resetAt: now + limit.windowMs };
      this.windows.set(key, window);
    }
    return window;
  }

  private refuse(
    request: LimitedRequest,
    now: number,
    hit: Omit<RateLimitHit, 'at' | 'method' | 'path'>,
    headers: Record<string, string>,
  ): RateLimitVerdict {
    const webhook = request.parts[0] === 'webhooks';
    const record: RateLimitHit = {
      at: now,
      method: request.method,
      path: `/${request.parts.map((part, index) => (index === 2 && webhook ? ':token' : part)).join('/')}`,
      ...(webhook && { interactionToken: request.parts[2] }),
      ...hit,
    };
    this.hits.push(record);
    const retryAfter = seconds(hit.retryAfterMs);
    return {
      limited: true,
      hit: record,
      headers: { ...headers, 'retry-after': String(Math.ceil(hit.retryAfterMs / 1000)) },
      body: {
        message: 'You are being rate limited.',
        retry_after: Number(retryAfter),
        global: hit.scope === 'global',
      },
    };
  }
}
