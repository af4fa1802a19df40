import type { Redis } from 'ioredis';
import type { JobRecord, JobStore, StoredImage } from './job-store.ts';

/**
 * Counts a user's images since a time over jobs that were not refused or failed and, if the new
 * job fits, records it: one script, so two processes cannot both slip under the quota.
 * KEYS: job hash, user's jobs (zset by creation), all jobs (zset by creation), open jobs (set)
 * ARGV: job id, created at, since, limit (-1: none), samples, key prefix, then field/value pairs
 */
const CREATE_WITHIN_QUOTA = `
local prefix = ARGV[6]
local used = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], '+inf')) do
  local fields = redis.call('HMGET', prefix .. 'job:' .. id, 'status', 'samples')
  if fields[1] and fields[1] ~= '"refused"' and fields[1] ~= '"failed"' then
    used = used + (tonumber(fields[2]) or 0)
  end
end
local limit = tonumber(ARGV[4])
if limit >= 0 and used + tonumber(ARGV[5]) > limit then return used end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return -1
`;

/**
 * Deletes the jobs created before a time, with their images and index entries.
 * KEYS: all jobs (zset by creation), open jobs (set); ARGV: before, key prefix
 */
const PURGE = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, id in ipairs(ids) do
  local job = ARGV[2] .. 'job:' .. id
  local user = redis.call('HGET', job, 'userId')
  if user then redis.call('ZREM', ARGV[2] .. 'user:' .. cjson.decode(user) .. ':jobs', id) end
  for _, index in ipairs(redis.call('SMEMBERS', job .. ':images')) do
    redis.call('DEL', job .. ':image:' .. index)
  end
  redis.call('DEL', job, job .. ':images')
  redis.call('ZREM', KEYS[1], id)
  redis.call('SREM', KEYS[2], id)
end
return #ids
`;

/** Statuses after which a job is no longer open (queued or running). */
const OPEN = new Set(['queued', 'running']);

/**
 * The job store on Redis, for several bot processes at once: each job is a hash of JSON-encoded
 * fields (so any field a `JobRecord` gains is kept without a schema change), images are binary
 * hashes beside it, and settings one hash. Retention is the same as the SQLite store's: jobs and
 * their images stay until `purgeCreatedBefore`.
 */
export class RedisJobStore implements JobStore {
  private readonly redis: Redis;
  private readonly prefix: string;

  /** @param prefix every key starts with it, so one Redis can hold several bots (or tests). */
  constructor(redis: Redis, options: { prefix: string }) {
    this.redis = redis;
    this.prefix = `${options.prefix}:`;
  }

  private jobKey(id: string): string {
    return `${this.prefix}job:${id}`;
  }

  async createWithinQuota(
    job: JobRecord,
    quota: { since: number; limit: number },
  ): Promise<{ created: true } | { created: false; used: number }> {
    const fields = Object.entries(job).flatMap(([key, value]) =>
      value === undefined ? [] : [key, JSON.stringify(value)],
    );
    const used = (await this.redis.eval(
      CREATE_WITHIN_QUOTA,
      4,
      this.jobKey(job.id),
      `${this.prefix}user:${job.userId}:jobs`,
      `${this.prefix}jobs`,
      `${this.prefix}open`,
      job.id,
      job.createdAt,
      quota.since,
      Number.isFinite(quota.limit) ? quota.limit : -1,
      job.samples,
      this.prefix,
      ...fields,
    )) as number;
    return used < 0 ? { created: true } : { created: false, used };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const hash = await this.redis.hgetall(this.jobKey(id));
    if (!hash.id) return undefined;
    return Object.fromEntries(
      Object.entries(hash).map(([key, value]) => [key, JSON.parse(value) as unknown]),
    ) as unknown as JobRecord;
  }

  async update(id: string, changes: Partial<Omit<JobRecord, 'id' | 'userId' | 'createdAt'>>): Promise<void> {
    const key = this.jobKey(id);
    const set: string[] = [];
    const unset: string[] = [];
    for (const [field, value] of Object.entries(changes)) {
      if (value === undefined) unset.push(field);
      else set.push(field, JSON.stringify(value));
    }
    // Only a job that exists is changed: an update racing a purge must not leave a partial job behind.
    if (!(await this.redis.exists(key))) return;
    const multi = this.redis.multi();
    if (set.length > 0) multi.hset(key, ...set);
    if (unset.length > 0) multi.hdel(key, ...unset);
    if (changes.status !== undefined) {
      if (OPEN.has(changes.status)) multi.sadd(`${this.prefix}open`, id);
      else multi.srem(`${this.prefix}open`, id);
    }
    await multi.exec();
  }

  async saveImages(images: readonly StoredImage[]): Promise<void> {
    const multi = this.redis.multi();
    for (const image of images) {
      const key = this.jobKey(image.jobId);
      multi.hset(`${key}:image:${image.index}`, {
        seed: String(image.seed),
        mimeType: image.mimeType,
        bytes: image.bytes,
      });
      multi.sadd(`${key}:images`, String(image.index));
    }
    await multi.exec();
  }

  async image(jobId: string, index: number): Promise<StoredImage | undefined> {
    const [seed, mimeType, bytes] = await this.redis.hmgetBuffer(
      `${this.jobKey(jobId)}:image:${index}`,
      'seed',
      'mimeType',
      'bytes',
    );
    if (!seed || !mimeType || !bytes) return undefined;
    return { jobId, index, seed: Number(seed.toString()), mimeType: mimeType.toString(), bytes };
  }

  async unfinished(): Promise<JobRecord[]> {
    const ids = await this.redis.smembers(`${this.prefix}open`);
    const jobs = await Promise.all(ids.map((id) => this.get(id)));
    return jobs
      .filter((job): job is JobRecord => job !== undefined && OPEN.has(job.status))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  async purgeCreatedBefore(before: number): Promise<number> {
    return (await this.redis.eval(
      PURGE,
      2,
      `${this.prefix}jobs`,
      `${this.prefix}open`,
      before,
      this.prefix,
    )) as number;
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.redis.hget(`${this.prefix}settings`, key)) ?? undefined;
  }

  async setSetting(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) await this.redis.hdel(`${this.prefix}settings`, key);
    else await this.redis.hset(`${this.prefix}settings`, key, value);
  }

  async claimSetting(key: string, value: string): Promise<boolean> {
    return (await this.redis.hsetnx(`${this.prefix}settings`, key, value)) === 1;
  }

  /** The connection belongs to the bot, which closes it after the queue. */
  async close(): Promise<void> {}
}
