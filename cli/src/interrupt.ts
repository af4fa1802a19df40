import { constants } from 'node:os';

/**
 * What a command hears of SIGINT and SIGTERM. The first signal aborts `stop`: send nothing more, but
 * let calls already sent (and maybe billed) finish and save. A second aborts `abort`: cancel
 * everything now. Each signal's `reason` is the signal's name.
 */
export interface Interrupt {
  stop: AbortSignal;
  abort: AbortSignal;
}

/** Listens for SIGINT and SIGTERM until `dispose` is called. */
export function listenForSignals(): { interrupt: Interrupt; dispose(): void } {
  const stop = new AbortController();
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) stop.abort(signal);
    else abort.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    interrupt: { stop: stop.signal, abort: abort.signal },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The signal's name, for messages. */
export function signalName(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'the interrupt';
}

/** 128 + the signal's number, as shells report a command a signal ended (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: AbortSignal): number {
  const number = constants.signals[signal.reason as NodeJS.Signals] as number | undefined;
  return 128 + (number ?? constants.signals.SIGINT);
}
