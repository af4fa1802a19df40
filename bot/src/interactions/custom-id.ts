/**
 * What a result button does. `upscale` is U1–U4 (post that image with its own row); `vary` is V1–V4;
 * `subtle`, `strong`, `up2` and `up4` are that row's Vary (Subtle), Vary (Strong), Upscale 2x and 4x;
 * `cancel` is ❌ under a job waiting in line.
 */
export type ButtonAction =
  'reroll' | 'edit' | 'upscale' | 'delete' | 'info' | 'vary' | 'subtle' | 'strong' | 'up2' | 'up4' | 'cancel';

const ACTIONS: readonly ButtonAction[] = [
  'reroll',
  'edit',
  'upscale',
  'delete',
  'info',
  'vary',
  'subtle',
  'strong',
  'up2',
  'up4',
  'cancel',
];
const PREFIX = 'sdxl';

/** A button's state: the action and the stored job it acts on (plus the image for U1–U4, V1–V4 and the image row). */
export interface ButtonState {
  action: ButtonAction;
  jobId: string;
  index?: number;
}

/** Encodes the state into a custom_id (at most 100 characters, as Discord requires). */
export function encodeCustomId(state: ButtonState): string {
  return [
    PREFIX,
    state.action,
    state.jobId,
    ...(state.index !== undefined ? [String(state.index)] : []),
  ].join(':');
}

/** Reads a custom_id this bot made; undefined for anything else. */
export function decodeCustomId(customId: string): ButtonState | undefined {
  const [prefix, action, jobId, index] = customId.split(':');
  if (prefix !== PREFIX || !jobId || !ACTIONS.includes(action as ButtonAction)) return undefined;
  const state: ButtonState = { action: action as ButtonAction, jobId };
  if (index !== undefined) {
    const value = Number(index);
    if (!Number.isInteger(value) || value < 0 || value > 9) return undefined;
    state.index = value;
  }
  return state;
}

/** The edit-prompt modal's custom_id, its prompt field and its optional file upload. */
export const EDIT_MODAL_PREFIX = 'sdxl-edit:';
export const EDIT_PROMPT_FIELD = 'prompt';
export const EDIT_IMAGE_FIELD = 'image';
