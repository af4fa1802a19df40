import type { GenerateInput } from '@sdxl-kit/client';
import {
  InteractionContextType,
  SlashCommandBuilder,
  type Attachment,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  type RepliableInteraction,
} from 'discord.js';
import { checkAccess } from '../access.ts';
import type { BotContext } from '../context.ts';
import type { JobOperation, JobRecord } from '../store/job-store.ts';
import { BotRefusal } from '../errors.ts';
import { parsePromptFlags } from '../prompt-flags.ts';
import { DEFAULT_SOURCE_STRENGTH } from '../jobs/operations.ts';
import { bringImage, type AttachedFile } from '../jobs/source-image.ts';
import { loadMemberSettings, settingsInput, withSuffix } from '../member-settings.ts';
import {
  IMAGE_OPTION,
  IMAGE_STRENGTH_FIELD,
  STRENGTH_OPTION,
  TXT2IMG_ONLY_OPTIONS,
  addImageOptions,
  addImagineOptions,
  readImagineOptions,
  suggestionsFor,
} from './imagine-options.ts';

export const data = addImageOptions(
  addImagineOptions(
    new SlashCommandBuilder()
      .setName('imagine')
      .setDescription('Make images from a prompt with SDXL 1.0, or vary an image you attach')
      // In servers only: the channel, role and moderator rules need one.
      .setContexts(InteractionContextType.Guild),
  ),
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

/** A file a member attached (or uploaded in the ✏️ form) to vary, under the option or field it came in. */
export interface Attached {
  option: string;
  file: AttachedFile;
  strength: number;
}

/**
 * Access rules, then the job: shared by the command, 🔄, the edit-prompt modal, V1–V4 and the image row
 * (`operation` says which stored image to vary or upscale; `attached`, a file the member brought;
 * `origin`, the job a button or form belongs to, whose server's budgets the new job counts against
 * wherever the click came from). Results go to the member only when their /settings say so.
 */
export async function imagine(
  interaction: RepliableInteraction,
  input: GenerateInput,
  context: BotContext,
  operation?: JobOperation,
  attached?: Attached,
  origin?: Pick<JobRecord, 'guildId'>,
) {
  checkAccess(interaction, context.config);
  const settings = await loadMemberSettings(context.store, interaction.user.id);
  const brought = attached && bringImage(attached.option, attached.file, attached.strength);
  await context.imagine.submit(interaction, input, operation, {
    ...(brought && { brought }),
    private: settings.private === true,
    ...(origin && { budgetGuildId: origin.guildId }),
  });
}

/** Discord's description of an attachment, as the download and the checks need it. */
export function attachedFile(attachment: Attachment): AttachedFile {
  return {
    url: attachment.url,
    name: attachment.name,
    size: attachment.size,
    contentType: attachment.contentType,
  };
}

/**
 * `image` and `strength` against each other and the other options, before anything is acknowledged:
 * strength within sdxl-img2img's bound and only with an image, and no option sdxl-img2img cannot use.
 */
function checkImageOptions(
  options: ChatInputCommandInteraction['options'],
  image: Attachment | null,
  strength: number | null,
): void {
  const refuse = (text: string) => new BotRefusal('invalid_option', `\u26a0\ufe0f ${text}`);
  const { min, max, allowed } = IMAGE_STRENGTH_FIELD;
  if (strength !== null && !(strength >= min! && strength <= max!))
    throw refuse(`\`${STRENGTH_OPTION}\`: ${strength} is not allowed; allowed: ${allowed}.`);
  if (strength !== null && !image) {
    throw refuse(
      `\`${STRENGTH_OPTION}\`: ${strength} applies to an attached \`${IMAGE_OPTION}\` only; attach one, or use \`refiner_strength\` for the refiner.`,
    );
  }
  if (!image) return;
  const unused = TXT2IMG_ONLY_OPTIONS.filter((option) => options.get(option) !== null);
  if (unused.length > 0) {
    throw refuse(
      `${unused.map((option) => `\`${option}\``).join(', ')}: not used when an \`${IMAGE_OPTION}\` is attached (sdxl-img2img takes ${unused.length === 1 ? 'no such option' : 'none of them'}); leave ${unused.length === 1 ? 'it' : 'them'} out or remove the image.`,
    );
  }
}

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const image = interaction.options.getAttachment(IMAGE_OPTION);
  const strength = interaction.options.getNumber(STRENGTH_OPTION);
  checkImageOptions(interaction.options, image, strength);
  // The member's /settings lie under what was typed: a typed option wins, `--no` adds to the negative
  // prompt in force, and the suffix goes after the prompt once its flags are read.
  const settings = await loadMemberSettings(context.store, interaction.user.id);
  const input = applyPromptFlags({ ...settingsInput(settings), ...readImagineOptions(interaction.options) });
  await imagine(
    interaction,
    { ...input, prompt: withSuffix(String(input.prompt), settings.suffix) },
    context,
    undefined,
    image
      ? {
          option: IMAGE_OPTION,
          file: attachedFile(image),
          strength: strength ?? DEFAULT_SOURCE_STRENGTH,
        }
      : undefined,
  );
}

export async function autocomplete(interaction: AutocompleteInteraction): Promise<void> {
  const focused = interaction.options.getFocused(true);
  await interaction.respond(suggestionsFor(focused.name, String(focused.value)));
}
