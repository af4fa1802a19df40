/** Exit codes scripts can branch on. */
export const EXIT = {
  ok: 0,
  failure: 1,
  invalidInput: 2,
  unauthorized: 3,
  insufficientCredits: 4,
  rateLimited: 5,
  /** A budget (`--max-cost`) stopped the run: some prompts were not sent. */
  budgetExceeded: 6,
  /** Another run holds the `--out` folder of a journaled batch; nothing was sent. */
  outInUse: 7,
  /** 128 + the signal's number when a signal is known (SIGTERM 143); this for an abort without one. */
  interrupted: 130,
} as const;
