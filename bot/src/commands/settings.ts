import {
  InteractionContextType,
  MessageFlags,
  SlashCommandBuilder,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext } from '../context.ts';
import { BotRefusal } from '../errors.ts';
import {
  MAX_SUFFIX_LENGTH,
  SETTING_OPTIONS,
  describeSettings,
  isRequestKey,
  loadMemberSettings,
  saveMemberSettings,
  settingsInput,
  type MemberSettings,
} from '../member-settings.ts';
import { addFieldOption, suggestionsFor } from './imagine-options.ts';

const CLEAR_OPTION = 'clear';

function build(): SlashCommandBuilder {
  const builder = new SlashCommandBuilder()
    .setName('settings')
    .setDescription('Your /imagine defaults: set some, clear them, or (with no options) see them')
    .setContexts(InteractionContextType.Guild);
  for (const { option, key } of SETTING_OPTIONS) if (isRequestKey(key)) addFieldOption(builder, option, key);
  builder
    .addStringOption((o) =>
      o
        .setName('suffix')
        .setDescription('Added after every prompt you type, e.g. "cinematic lighting, 35mm"')
        .setMaxLength(MAX_SUFFIX_LENGTH),
    )
    .addBooleanOption((o) =>
      o.setName('private').setDescription('True: your results only you see; false: posted in the channel'),
    )
    .addStringOption((o) =>
      o
        .setName(CLEAR_OPTION)
        .setDescription('Forget one default (or all) before setting the others given')
        .addChoices(
          { name: 'all', value: 'all' },
          ...SETTING_OPTIONS.map(({ option }) => ({ name: option, value: option })),
        ),
    );
  return builder;
}

export const data = build();

/** Control characters would reach the prompt, where the client refuses them; a suffix is one line. */
const CONTROL = /\p{Cc}/u;

/**
 * Shows, sets or clears the member's defaults. New values are checked with the rules /imagine uses
 * (the client's schema), so a default can never make every later /imagine fail.
 * @throws {BotRefusal} or the client's `invalid_request` error naming the option, value and range.
 */
export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const userId = interaction.user.id;
  const current = await loadMemberSettings(context.store, userId);
  const clear = interaction.options.getString(CLEAR_OPTION);
  let next: MemberSettings = { ...current };
  if (clear === 'all') next = {};
  else if (clear) delete next[SETTING_OPTIONS.find(({ option }) => option === clear)!.key];
  let changed = clear !== null;
  for (const { option, key } of SETTING_OPTIONS) {
    const value = interaction.options.get(option)?.value;
    if (value === undefined || value === null) continue;
    (next as Record<string, unknown>)[key] = value;
    changed = true;
  }
  if (next.suffix !== undefined) {
    const suffix = next.suffix.trim();
    if (CONTROL.test(suffix) || suffix.length > MAX_SUFFIX_LENGTH) {
      throw new BotRefusal(
        'invalid_option',
        `\u26a0\ufe0f \`suffix\`: ${JSON.stringify(suffix.slice(0, 60))} is not allowed; allowed: text without control characters, at most ${MAX_SUFFIX_LENGTH} characters.`,
      );
    }
    next.suffix = suffix || undefined;
  }
  // The same schema /imagine's requests pass: a field out of range is named with its option and range.
  context.sdxl.validate({ prompt: 'a check of the defaults', ...settingsInput(next) });
  if (changed) await saveMemberSettings(context.store, userId, next);
  const lines = describeSettings(next);
  const content = lines.length
    ? [
        `**${changed ? 'Saved. ' : ''}Your /imagine defaults** (applied under what you type: a typed option wins)`,
        ...lines,
      ].join('\n')
    : `${changed ? 'Cleared. ' : ''}You have no defaults: /imagine uses the bot\u2019s. Set some with \`/settings\`, e.g. \`steps:30 suffix:35mm photo\`.`;
  await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
}

export async function autocomplete(interaction: AutocompleteInteraction): Promise<void> {
  const focused = interaction.options.getFocused(true);
  await interaction.respond(suggestionsFor(focused.name, String(focused.value)));
}
