import type { ModalSubmitInteraction } from 'discord.js';
import { applyPromptFlags, imagine } from '../commands/imagine.ts';
import type { BotContext } from '../context.ts';
import { liveJob } from './buttons.ts';
import { EDIT_MODAL_PREFIX, EDIT_PROMPT_FIELD } from './custom-id.ts';

/** The ✏️ modal: runs the edited prompt again with the same seed and settings (a variation stays one). */
export async function handleModal(interaction: ModalSubmitInteraction, context: BotContext): Promise<void> {
  if (!interaction.customId.startsWith(EDIT_MODAL_PREFIX)) return;
  const job = await liveJob(context, interaction.customId.slice(EDIT_MODAL_PREFIX.length));
  const prompt = interaction.fields.getTextInputValue(EDIT_PROMPT_FIELD);
  // Flags typed into the new prompt apply on top of the job's settings; the seed stays unless --seed says otherwise.
  const { seed: _keptSeed, ...settings } = job.input;
  const edited = applyPromptFlags({ ...settings, prompt });
  await imagine(
    interaction,
    { ...edited, seed: edited.seed ?? job.seed ?? job.input.seed ?? -1 },
    context,
    job.operation,
  );
}
