import type { CallOptions, SdxlError } from '@sdxl-kit/client';

/**
 * Whether a failed attempt shows that the API accepted nothing, so nothing was billed: it answered
 * with an error status (429, 406, 5xx, ...), or the connection failed before the request left. A
 * timeout, a connection broken after sending or an unreadable 2xx leaves it unknown.
 */
export function acceptedNothing(error: SdxlError): boolean {
  if (typeof (error as { status?: unknown }).status === 'number') return true;
  return error.code === 'connection' && (error as { sent?: unknown }).sent === false;
}

/** One call of a run, and whether it has gone to the API. */
export class TrackedCall {
  readonly options: CallOptions & { signal: AbortSignal };
  /** Set when the run stopped sending before this call went out, or before its next attempt. */
  cancelled: 'unsent' | 'not-retried' | undefined;
  /** The error of the last attempt when it was cancelled before a retry. */
  lastError: SdxlError | undefined;
  /** Whether an attempt ever went to the transport, so the call may be billed. */
  sent = false;
  private readonly controller = new AbortController();
  private onWire = false;
  private settled = false;
  private readonly calls: Calls;
  private readonly abortAll: AbortSignal;
  private readonly abortNow = () => this.controller.abort(this.abortAll.reason);

  constructor(calls: Calls, abortAll: AbortSignal) {
    this.calls = calls;
    this.abortAll = abortAll;
    // Not `AbortSignal.any`: once anything listens to such a signal, `abortAll` keeps a reference to
    // it (and two finalization records) until a full garbage collection, which a batch seldom has,
    // so every call of a batch piled up there; this listener goes with the call.
    if (abortAll.aborted) this.abortNow();
    else abortAll.addEventListener('abort', this.abortNow, { once: true });
    this.options = {
      signal: this.controller.signal,
      // The client calls this synchronously just before an attempt goes to the transport.
      onAttempt: () => {
        this.onWire = true;
        this.sent = true;
      },
      // The client tells this while the call still holds its place, before the next one can go out.
      onAttemptFailed: (error) => this.calls.attemptFailed(error),
      onRetry: ({ error }) => {
        this.onWire = false;
        this.lastError = error;
        if (this.calls.stopped) this.cancel();
      },
    };
  }

  /** The client has answered or failed: nothing of this call is on the wire any more. */
  settle(): void {
    this.abortAll.removeEventListener('abort', this.abortNow);
    this.settled = true;
    this.onWire = false;
    this.calls.settled(this);
  }

  /** Cancels the call unless an attempt is on the wire or it has settled; returns whether it did. */
  cancel(): boolean {
    if (this.settled || this.onWire || this.cancelled !== undefined) return false;
    this.cancelled = this.lastError ? 'not-retried' : 'unsent';
    this.controller.abort();
    return true;
  }

  /** Whether an attempt is on the wire now. */
  get sending(): boolean {
    return this.onWire && this.cancelled === undefined;
  }
}

/**
 * The calls of one run. Stopping cancels only the calls not on the wire (queued, or waiting to retry):
 * a call already sent may be billed, so it is left to finish and its images are saved.
 */
export class Calls {
  /** The calls not yet settled, in the order they were opened; a settled call is let go. */
  private readonly unsettled = new Set<TrackedCall>();
  private reason: string | undefined;
  private readonly stopsRun: (error: SdxlError) => string | undefined;

  /** `stopsRun` says why a failed attempt stops the run (a refused key, an empty account), or nothing. */
  constructor(stopsRun: (error: SdxlError) => string | undefined = () => undefined) {
    this.stopsRun = stopsRun;
  }

  /** An attempt failed: stops the run at once when the failure means every other call would too. */
  attemptFailed(error: SdxlError): void {
    const reason = this.stopsRun(error);
    if (reason !== undefined) this.stop(reason);
  }

  /** A new call, cancelled at once by `abortAll` whatever its state. */
  open(abortAll: AbortSignal): TrackedCall {
    const call = new TrackedCall(this, abortAll);
    this.unsettled.add(call);
    if (this.stopped) call.cancel();
    return call;
  }

  /** Why the run stopped sending, once it did. */
  get stopped(): string | undefined {
    return this.reason;
  }

  /** Sends nothing more; returns how many calls are still on the wire. */
  stop(reason: string): number {
    this.reason ??= reason;
    for (const call of this.unsettled) call.cancel();
    let sending = 0;
    for (const call of this.unsettled) if (call.sending) sending++;
    return sending;
  }

  /** A call has answered or failed: it can no longer be cancelled nor be on the wire. */
  settled(call: TrackedCall): void {
    this.unsettled.delete(call);
  }
}
