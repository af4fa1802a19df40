/**
 * A sliding-window limiter: at most `limit` admissions in any `windowMs`. It mirrors how the hosted
 * API announces its limit, by the time the oldest admitted request leaves the window.
 */
export class SlidingRateWindow {
  // Admission times in ms, oldest first.
  readonly #admitted: number[] = [];

  /**
   * Admits a request at `now` or says when a slot frees up.
   * @returns `{ admitted: true }`, or `{ admitted: false, resetAt }` with `resetAt` in epoch ms.
   */
  tryAdmit(
    now: number,
    limit: number,
    windowMs: number,
  ): { admitted: true } | { admitted: false; resetAt: number } {
    this.#forgetBefore(now - windowMs);
    if (this.#admitted.length < limit) {
      this.#admitted.push(now);
      return { admitted: true };
    }
    return { admitted: false, resetAt: this.resetAt(now, windowMs) };
  }

  /** When the oldest admission leaves the window; a full window from `now` when none is held. */
  resetAt(now: number, windowMs: number): number {
    this.#forgetBefore(now - windowMs);
    const oldest = this.#admitted[0];
    return oldest === undefined ? now + windowMs : oldest + windowMs;
  }

  #forgetBefore(cutoff: number): void {
    while (this.#admitted.length > 0 && this.#admitted[0]! <= cutoff) this.#admitted.shift();
  }
}
