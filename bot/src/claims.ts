/**
 * What copies of the bot claim so that each thing happens once: the answer to an interaction (Discord
 * gives every event to every session of a shard, so copies logged in as one shard all receive it) and
 * the submit of a job (a shared queue may hand a job out twice). One process alone claims everything;
 * on Redis the claims are atomic steps shared by every copy (`redis/claims.ts`).
 */

/**
 * Who answers an interaction: `mine` (answer it), `elsewhere` (another copy does: stay silent), or
 * `last` (this copy is draining and no other copy is alive: it answers that the bot is restarting).
 */
export type InteractionVerdict = 'mine' | 'elsewhere' | 'last';

/** This copy among the copies logged in as the same shard. */
export interface CopyClaims {
  /** Claims the answer to one interaction, before anything is sent to Discord. */
  claim(interactionId: string): Promise<InteractionVerdict>;
  /** Logged in: from now on the other copies count on this one to answer. */
  ready(): void;
  /** After SIGTERM: claims nothing new while another copy is alive, at once. */
  drain(): Promise<void>;
  readonly draining: boolean;
  /** Stops announcing this copy, before the connection closes. */
  close(): Promise<void>;
}

/** The one copy of a bot without Redis: every interaction is its own; draining, it answers "restarting". */
export class LoneCopy implements CopyClaims {
  draining = false;

  async claim(): Promise<InteractionVerdict> {
    return this.draining ? 'last' : 'mine';
  }

  ready(): void {}

  async drain(): Promise<void> {
    this.draining = true;
  }

  async close(): Promise<void> {}
}

/**
 * A run's hold on a job's one submit. `mine`: no run claimed it before, this one submits. `orphaned`:
 * a run claimed it and stopped renewing its hold (its process died): this run holds it now and takes
 * over, by `requestId` when the submit got that far, never by submitting again unless the job never
 * left `queued`. `held`: a live run holds it; this one must wait for it, never submit.
 */
export type SubmitClaim =
  | { state: 'held'; requestId?: string }
  | { state: 'mine' | 'orphaned'; requestId?: string; hold: SubmitHold };

/** A held submit claim: renewed while the run lives, released when it ends. */
export interface SubmitHold {
  /** Records the request id the API gave, for a run that takes over after this one. */
  submitted(requestId: string): Promise<void>;
  /** Stops renewing and lets go; the record that a submit was claimed stays. */
  release(): Promise<void>;
}

/** The per-job submit claims every run of a job takes before it may submit. */
export interface SubmitClaims {
  claim(jobId: string): Promise<SubmitClaim>;
}

/** One process: its queue hands a job out once, and a second run in the same process is waited out by the service. */
export class LocalSubmitClaims implements SubmitClaims {
  async claim(): Promise<SubmitClaim> {
    return { state: 'mine', hold: { submitted: async () => {}, release: async () => {} } };
  }
}
