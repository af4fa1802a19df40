import type { GenerateInput } from '@sdxl-kit/client';
import type { JobStore } from './store/job-store.ts';

/**
 * A member's /settings: defaults applied under the options typed in /imagine (typed options win), and
 * whether results go to them only. Kept in the job store, so they survive a restart.
 */
export interface MemberSettings {
  negativePrompt?: string;
  style?: string;
  scheduler?: string;
  steps?: number;
  guidanceScale?: number;
  samples?: number;
  /** Added to the end of every prompt, after a comma. */
  suffix?: string;
  /** Results (and the status before them) only the member sees. */
  private?: boolean;
}

/** The /settings options, named as /imagine names them, and the member setting each sets. */
export const SETTING_OPTIONS: readonly { option: string; key: keyof MemberSettings }[] = [
  { option: 'negative_prompt', key: 'negativePrompt' },
  { option: 'style', key: 'style' },
  { option: 'scheduler', key: 'scheduler' },
  { option: 'steps', key: 'steps' },
  { option: 'guidance', key: 'guidanceScale' },
  { option: 'samples', key: 'samples' },
  { option: 'suffix', key: 'suffix' },
  { option: 'private', key: 'private' },
];

/** Settings that are request fields, applied under what is typed. */
const REQUEST_KEYS = ['negativePrompt', 'style', 'scheduler', 'steps', 'guidanceScale', 'samples'] as const;

/** Whether a setting is a request field (its /settings option then has that field's bounds and suggestions). */
export function isRequestKey(key: keyof MemberSettings): key is (typeof REQUEST_KEYS)[number] {
  return (REQUEST_KEYS as readonly string[]).includes(key);
}

/** The longest prompt suffix: long enough for a style phrase, short enough to leave room for the prompt. */
export const MAX_SUFFIX_LENGTH = 300;

/** The store keeps every member's settings under one key each (any JobStore's getSetting/setSetting). */
const keyFor = (userId: string) => `member-settings:${userId}`;

export async function loadMemberSettings(store: JobStore, userId: string): Promise<MemberSettings> {
  const raw = await store.getSetting(keyFor(userId));
  if (!raw) return {};
  try {
    return JSON.parse(raw) as MemberSettings;
  } catch {
    // A value this bot did not write: better no defaults than a crash on every /imagine.
    return {};
  }
}

/** Saves the settings; empty settings remove the member's entry. */
export async function saveMemberSettings(
  store: JobStore,
  userId: string,
  settings: MemberSettings,
): Promise<void> {
  const kept = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
  await store.setSetting(keyFor(userId), Object.keys(kept).length ? JSON.stringify(kept) : undefined);
}

/** The member's request defaults as request fields, to lay under the typed ones. */
export function settingsInput(settings: MemberSettings): Partial<GenerateInput> {
  const input: Record<string, unknown> = {};
  for (const key of REQUEST_KEYS) if (settings[key] !== undefined) input[key] = settings[key];
  return input as Partial<GenerateInput>;
}

/** The prompt with the member's suffix after it (once: a prompt that already ends with it is kept). */
export function withSuffix(prompt: string, suffix: string | undefined): string {
  if (!suffix) return prompt;
  if (prompt.trimEnd().endsWith(suffix)) return prompt;
  return `${prompt.trimEnd().replace(/[,\s]+$/, '')}, ${suffix}`;
}

/** The settings as lines under their option names, for /settings and ℹ️; none gives no lines. */
export function describeSettings(settings: MemberSettings): string[] {
  const lines: string[] = [];
  for (const { option, key } of SETTING_OPTIONS) {
    const value = settings[key];
    if (value === undefined) continue;
    if (key === 'private') lines.push(`results: ${value ? 'only you see them' : 'posted in the channel'}`);
    else lines.push(`${option}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
  return lines;
}
