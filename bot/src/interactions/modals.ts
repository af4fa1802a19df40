import type { ModalSubmitInteraction } from 'discord.js';
import { applyPromptFlags, attachedFile, imagine, type Attached } from '../commands/imagine.ts';
import type { BotContext } from '../context.ts';
import { DEFAULT_SOURCE_STRENGTH } from '../jobs/operations.ts';
import { liveJob } from './buttons.ts';
import { EDIT_IMAGE_FIELD, EDIT_MODAL_PREFIX, EDIT_PROMPT_FIELD } from './custom-id.ts';

/**
 * The ✏️ modal: runs the edited prompt again with the same seed and settings (a variation stays one). A
 * file uploaded in it becomes the source: the job then varies that image, at the strength the job used
 * if it was a variation, else at the default.
 */
export async function handleModal(interaction: ModalSubmitInteraction, context: BotContext): Promise<void> {
  if (!interaction.customId.startsWith(EDIT_MODAL_PREFIX)) return;
  const job = await liveJob(context, interaction.customId.slice(EDIT_MODAL_PREFIX.length));
  const prompt = interaction.fields.getTextInputValue(EDIT_PROMPT_FIELD);
  // A form opened before the upload field existed has none.
  const upload = interaction.fields.fields.has(EDIT_IMAGE_FIELD)
    ? interaction.fields.getUploadedFiles(EDIT_IMAGE_FIELD)?.first()
    : undefined;
  // Flags typed into the new prompt apply on top of the job's settings; the seed stays unless --seed says otherwise.
  const { seed: _keptSeed, ...settings } = job.input;
  const edited = applyPromptFlags({ ...settings, prompt });
  const attached: Attached | undefined = upload && {
    option: EDIT_IMAGE_FIELD,
    file: attachedFile(upload),
    strength: job.operation?.kind === 'vary' ? job.operation.strength : DEFAULT_SOURCE_STRENGTH,
  };
  await imagine(
    interaction,
    { ...edited, seed: edited.seed ?? job.seed ?? job.input.seed ?? -1 },
    context,
    attached ? undefined : job.operation,
    attached,
    job,
  );
}
