/** Where a command writes; the bin passes the process's own streams, tests pass their own. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** A one-line status on a terminal's stderr, redrawn in place; silent when stderr is not a terminal. */
export class Progress {
  private readonly stream: Io['stderr'];
  private readonly enabled: boolean;
  private shown = false;

  constructor(stream: Io['stderr'], enabled: boolean) {
    this.stream = stream;
    this.enabled = enabled && stream.isTTY === true;
  }

  update(text: string): void {
    if (!this.enabled) return;
    this.stream.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Credits as a batch's lines and its contact sheet show them: at most four decimals, no trailing zeros. */
export function shortCredits(credits: number): string {
  return Number(credits.toFixed(4)).toString();
}
