import type { Redis } from 'ioredis';

/**
 * One-time claims that lapse: of several processes that see a budget cross 80% in the same window,
 * the one whose claim succeeds tells the admins. Claims expire with the window, so nothing piles up.
 */
export interface NoticeClaims {
  /** True for the first claim of `key` until `expiresAt` (epoch ms). */
  claim(key: string, expiresAt: number): Promise<boolean>;
}

/** Claims on Redis: `SET NX` with the expiry, under the bot's prefix. */
export class RedisNoticeClaims implements NoticeClaims {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(redis: Redis, options: { prefix: string }) {
    this.redis = redis;
    this.prefix = `${options.prefix}:budget-notice:`;
  }

  async claim(key: string, expiresAt: number): Promise<boolean> {
    return (await this.redis.set(this.prefix + key, '1', 'PXAT', expiresAt, 'NX')) === 'OK';
  }
}
