import type { GenerateInput, Reservation } from '@sdxl-kit/client';

/** Where a job is in its life. `refused` jobs never count against a quota; `failed` ones are not billed. */
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'refused' | 'deleted';

/**
 * The image index under which a job keeps the image a member brought (an /imagine attachment or a file
 * uploaded in the ✏️ form): its results use 0 and up, so the two never meet.
 */
export const SOURCE_IMAGE_INDEX = -1;

/**
 * What a job does to a stored image instead of making one from the prompt: a variation (sdxl-img2img)
 * or an upscale (esrgan) of image `sourceIndex` of job `sourceJobId`. A variation of an image a member
 * brought has `sourceIndex` {@link SOURCE_IMAGE_INDEX} and `sourceName`, the file's name.
 */
export type JobOperation =
  | {
      kind: 'vary';
      sourceJobId: string;
      sourceIndex: number;
      strength: number;
      sourceName?: string;
      /** The Vary button that made it; absent for V1–V4 and for an image the member brought. */
      mode?: 'subtle' | 'strong';
    }
  | { kind: 'upscale'; sourceJobId: string; sourceIndex: number; scale: 2 | 4 };

/** A job as kept between restarts: enough to replay it and to answer its buttons. */
export interface JobRecord {
  id: string;
  userId: string;
  guildId: string | null;
  channelId: string | null;
  /** The request as the user asked for it (seed -1 means random). */
  input: GenerateInput;
  /** Images asked for, counted against the daily quota. */
  samples: number;
  status: JobStatus;
  createdAt: number;
  finishedAt?: number;
  /** The seed actually used, once known. */
  seed?: number;
  remainingCredits?: number;
  /** The short reason a job failed, as the user was told. */
  error?: string;
  /** Absent for /imagine (sdxl1.0-txt2img); set for V1–V4, Vary and Upscale. */
  operation?: JobOperation;
  /**
   * The async API's request id, stored before the first status check: a restarted bot resumes the job
   * by it instead of submitting it again, so it is billed once.
   */
  requestId?: string;
  /** Where the job's messages go, kept so a restarted bot can still answer; cleared when the job ends. */
  reply?: StoredReply;
  /**
   * The credits held against the job's budgets when it was accepted, settled or let go when it ends by
   * whichever process ends it (after a restart too). Absent when no budget applies.
   */
  reservation?: Reservation;
}

/**
 * The interaction a job answers, as a restarted process can use it: its webhook (the application id
 * and the interaction token) edits the original reply until the token dies, 15 minutes after the
 * command. A token lets anyone answer as the bot until then, so it is never logged and is dropped from
 * the store once the job ends.
 */
export interface StoredReply {
  applicationId: string;
  token: string;
  /** Epoch ms when the token dies. */
  expiresAt: number;
  /** The upload limit per attachment the interaction reported, in bytes. */
  attachmentLimit?: number;
  /**
   * The reply's message id: once the token is dead, the bot can still edit its own (public) reply
   * through the channel, so it does not stay "making…" when the result is posted anew.
   */
  messageId?: string;
  /** The reply only the requester sees (their /settings): a late result then goes to them directly. */
  private?: boolean;
}

/** One image of a finished job. */
export interface StoredImage {
  jobId: string;
  index: number;
  seed: number;
  mimeType: string;
  bytes: Buffer;
}

/**
 * Keeps jobs and their images. Async so that a shared database can replace the embedded one
 * when several bot processes share a queue.
 */
export interface JobStore {
  /**
   * Records a new job unless its images would take the user past `limit` images since `since`
   * (jobs refused or failed do not count). Check and insert are one step, so simultaneous requests
   * cannot both slip under the quota.
   */
  createWithinQuota(
    job: JobRecord,
    quota: { since: number; limit: number },
  ): Promise<{ created: true } | { created: false; used: number }>;
  get(id: string): Promise<JobRecord | undefined>;
  update(id: string, changes: Partial<Omit<JobRecord, 'id' | 'userId' | 'createdAt'>>): Promise<void>;
  saveImages(images: readonly StoredImage[]): Promise<void>;
  image(jobId: string, index: number): Promise<StoredImage | undefined>;
  /** Jobs left queued or running, e.g. by a crash, oldest first (the order they were asked for). */
  unfinished(): Promise<JobRecord[]>;
  /** Deletes jobs (and their images) created before `before`; returns how many. */
  purgeCreatedBefore(before: number): Promise<number>;
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string | undefined): Promise<void>;
  /**
   * Sets `key` only if it has no value; true when this call set it. Atomic, so of several processes
   * that see the same event, one alone acts on it (one admin notice per crossing).
   */
  claimSetting(key: string, value: string): Promise<boolean>;
  close(): Promise<void>;
}
