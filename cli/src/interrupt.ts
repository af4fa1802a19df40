import { constants } from 'node:os';

/**
 * What a command hears of SIGINT and SIGTERM. The first signal aborts `stop`: send nothing more, but
 * let calls already sent (and maybe billed) finish and save. A second aborts `abort`: cancel
 * everything now. Each signal's `reason` is the signal's name.
 */
export interface Interrupt {
  stop: AbortSignal;
  abort: AbortSignal;
  /**
   * Called by a command once it handles `stop` itself (it is about to send, or serve). Until then a
   * signal ends the process at once, as the signal's default would (a shell reports 128 + n): nothing
   * has been sent, and a command may be blocked (reading stdin, creating --out on a hung mount)
   * where no one is listening to `stop`.
   */
  takeOver?: () => void;
}

/** Listens for SIGINT and SIGTERM until `dispose` is called. */
export function listenForSignals(): { interrupt: Interrupt; dispose(): void } {
  const stop = new AbortController();
  const abort = new AbortController();
  let handled = false;
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!handled) {
      // Nothing sent yet: die of the signal as if there were no handler (a shell reports 128 + n).
      // process.exit() could wait on a file read blocked in libuv's thread pool (a FIFO, a hung mount).
      dispose();
      process.kill(process.pid, signal);
    } else if (!stop.signal.aborted) stop.abort(signal);
    else abort.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    interrupt: {
      stop: stop.signal,
      abort: abort.signal,
      takeOver: () => {
        handled = true;
      },
    },
    dispose,
  };
}

/** The signal's name, for messages. */
export function signalName(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'the interrupt';
}

/** 128 + the signal's number, as shells report a command a signal ended (SIGINT 130, SIGTERM 143). */
function exitCodeOf(name: NodeJS.Signals): number {
  const number = constants.signals[name] as number | undefined;
  return 128 + (number ?? constants.signals.SIGINT);
}

/** The exit code for the signal that aborted `signal`. */
export function signalExitCode(signal: AbortSignal): number {
  return exitCodeOf(signal.reason as NodeJS.Signals);
}
