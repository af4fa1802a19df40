import type { GenerateInput } from '@sdxl-kit/client';
import {
  InteractionContextType,
  SlashCommandBuilder,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  type RepliableInteraction,
} from 'discord.js';
import { checkAccess } from '../access.ts';
import type { BotContext } from '../context.ts';
import type { JobOperation } from '../store/job-store.ts';
import { BotRefusal } from '../errors.ts';
import { parsePromptFlags } from '../prompt-flags.ts';
import { addImagineOptions, readImagineOptions, suggestionsFor } from './imagine-options.ts';

export const data = addImagineOptions(
  new SlashCommandBuilder()
    .setName('imagine')
    .setDescription('Make images from a prompt with SDXL 1.0')
    // In servers only: the channel, role and moderator rules need one.
    .setContexts(InteractionContextType.Guild),
);

/**
 * Applies `--no <words>` (added to the negative prompt) and `--seed N` typed at the end of the prompt.
 * A seed chosen in the `seed` option wins over `--seed`.
 */
export function applyPromptFlags(input: GenerateInput): GenerateInput {
  const parsed = parsePromptFlags(String(input.prompt ?? ''));
  if (parsed.error) throw new BotRefusal('invalid_option', `\u26a0\ufe0f ${parsed.error}`);
  const next: GenerateInput = { ...input, prompt: parsed.prompt };
  if (parsed.negative)
    next.negativePrompt = [input.negativePrompt, parsed.negative].filter(Boolean).join(', ');
  if (parsed.seed !== undefined && input.seed === undefined) next.seed = parsed.seed;
  return next;
}

/**
 * Access rules, then the job: shared by the command, 🔄, the edit-prompt modal, V1–V4 and the image row
 * (`operation` says which stored image to vary or upscale).
 */
export async function imagine(
  interaction: RepliableInteraction,
  input: GenerateInput,
  context: BotContext,
  operation?: JobOperation,
) {
  checkAccess(interaction, context.config);
  await context.imagine.submit(interaction, input, operation);
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  await imagine(interaction, applyPromptFlags(readImagineOptions(interaction.options)), context);
}

export async function autocomplete(interaction: AutocompleteInteraction): Promise<void> {
  const focused = interaction.options.getFocused(true);
  await interaction.respond(suggestionsFor(focused.name, String(focused.value)));
}
