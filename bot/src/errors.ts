import type { InvalidField, SdxlErrorCode } from '@sdxl-kit/client';
import { optionNameFor } from './commands/imagine-options.ts';

/** Why the bot itself said no; each has one short message the user can act on. */
export type RefusalCode =
  | 'invalid_option'
  | 'not_allowed'
  | 'banned_word'
  | 'user_queue_full'
  | 'daily_quota'
  | 'budget'
  | 'out_of_credits'
  | 'expired'
  | 'not_owner'
  | 'not_cancellable'
  | 'shutting_down'
  | 'busy';

/** While a shared queue's Redis is unreachable: nothing the user asked for was taken. */
export const BUSY_MESSAGE =
  '\u23f3 The bot is busy and cannot take requests this moment (its queue is unreachable). Nothing was queued or billed; try again in a minute.';

/** A command or click taken while the bot stops and no other copy of it is running: nothing was done. */
export const RESTARTING_REFUSAL =
  '\ud83d\udd01 The bot is restarting, so this was not done (nothing was queued or billed). Try again in a moment.';

/** A job stopped because the bot is restarting. */
export const RESTARTING_MESSAGE =
  '\ud83d\udd01 The bot is restarting and this job was stopped. Run it again in a moment.';

/** A refusal by the bot's own rules (not an API error); `message` is what the user reads. */
export class BotRefusal extends Error {
  readonly code: RefusalCode;

  constructor(code: RefusalCode, message: string) {
    super(message);
    this.name = 'BotRefusal';
    this.code = code;
  }
}

/** Short, user-facing text for each client error code; details go to the log. */
export const API_MESSAGES: Readonly<Record<SdxlErrorCode, string>> = {
  invalid_request: 'Some options are not allowed.',
  unauthorized:
    'The image service refused the bot\u2019s key. An admin needs to check the bot\u2019s configuration.',
  not_found: 'The image service address is wrong. An admin needs to check the bot\u2019s configuration.',
  method_not_allowed:
    'The image service address is wrong. An admin needs to check the bot\u2019s configuration.',
  insufficient_credits: 'The bot is out of image credits; nothing was billed.',
  unprocessable: 'The image service refused one of the options. Try other values.',
  rate_limited: 'The image service is busy. Try again in a minute; nothing was billed.',
  server_error: 'The image service failed on its side. Try again later; nothing was billed.',
  timeout: 'The image service did not answer in time. Try again later.',
  connection: 'The bot could not reach the image service. Try again later.',
  aborted: 'The job was stopped.',
  bad_response: 'The image service sent something that is not an image. Try again later.',
  job_failed: 'The image service accepted the job, then it failed; nothing was billed. Try other options.',
  request_expired:
    'The image service no longer knows this job (results are kept an hour); nothing more was billed.',
  model_retired:
    'The image service has retired this model; nothing was billed. An admin needs to choose another.',
  budget_exceeded: 'A credit budget set for this bot has no room for this job; nothing was made or billed.',
};

/** The out-of-credits message; it says the admins were told only when there is a channel to tell them in. */
export function outOfCreditsMessage(adminsTold: boolean): string {
  return `${API_MESSAGES.insufficient_credits} ${adminsTold ? 'The admins have been told.' : 'An admin needs to top up the account.'}`;
}

/** Names the Discord option, the value given and the range, for each invalid field. */
export function describeInvalidFields(fields: readonly InvalidField[]): string {
  return fields
    .map((field) => {
      const option = optionNameFor(field.field);
      if (field.allowed.startsWith('below 1 while the refiner')) {
        return `\`${option}\`: ${field.value} leaves the refiner no steps; set it below 1 or set \`refiner\` to false.`;
      }
      return `\`${option}\`: ${field.value} is not allowed; allowed: ${field.allowed}.`;
    })
    .join('\n');
}

/**
 * The one error boundary: turns anything thrown while serving an interaction into a short message;
 * `adminsTold` when an admin channel heard about a lack of credits.
 * Client errors are matched by `code`, never by class, so two copies of the client still work.
 */
export function userMessage(error: unknown, options: { adminsTold?: boolean } = {}): string {
  if (error instanceof BotRefusal) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'insufficient_credits') return `\u274c ${outOfCreditsMessage(options.adminsTold ?? false)}`;
  if (code === 'invalid_request') {
    const fields = (error as { fields?: readonly InvalidField[] }).fields ?? [];
    return `\u26a0\ufe0f ${describeInvalidFields(fields) || API_MESSAGES.invalid_request}`;
  }
  if (typeof code === 'string' && code in API_MESSAGES)
    return `\u274c ${API_MESSAGES[code as SdxlErrorCode]}`;
  return '\u274c Something went wrong on the bot\u2019s side. It has been logged; try again later.';
}
