import {
  AttachmentBuilder,
  FileUploadBuilder,
  LabelBuilder,
  MessageFlags,
  ModalBuilder,
  RESTJSONErrorCodes,
  TextInputBuilder,
  TextInputStyle,
  type ButtonInteraction,
} from 'discord.js';
import { checkAccess, isModerator } from '../access.ts';
import { imagine } from '../commands/imagine.ts';
import { MAX_PROMPT_LENGTH } from '../commands/imagine-options.ts';
import type { BotContext } from '../context.ts';
import { BotRefusal } from '../errors.ts';
import { fitImage } from '../jobs/images.ts';
import { STRONG_STRENGTH, SUBTLE_STRENGTH, operationLabel, upscalesFor } from '../jobs/operations.ts';
import { DEFAULT_ATTACHMENT_LIMIT, imageRow, parametersText, sizeOf } from '../jobs/render.ts';
import { MAX_SOURCE_SIDE } from '../jobs/source-image.ts';
import { deferPublicly } from '../jobs/replies.ts';
import { describeSettings, loadMemberSettings } from '../member-settings.ts';
import type { JobOperation, JobRecord } from '../store/job-store.ts';
import { decodeCustomId, EDIT_IMAGE_FIELD, EDIT_MODAL_PREFIX, EDIT_PROMPT_FIELD } from './custom-id.ts';

/** A stored job the buttons may still act on, or a refusal saying it expired. */
export async function liveJob(context: BotContext, jobId: string): Promise<JobRecord> {
  const job = await context.store.get(jobId);
  const ttl = context.config.jobTtlHours * 3_600_000;
  if (!job || job.status === 'deleted' || job.createdAt < Date.now() - ttl) {
    throw new BotRefusal(
      'expired',
      `\u231b This result has expired (results are kept ${context.config.jobTtlHours} hours). Run /imagine again.`,
    );
  }
  return job;
}

/** Handles the result buttons: 🔄 ✏️ U1–U4 V1–V4 🗑 ℹ️, Upscale 2x/4x, Vary (Subtle/Strong), and ❌ under a waiting job. Their state is the custom_id plus the stored job. */
export async function handleButton(interaction: ButtonInteraction, context: BotContext): Promise<void> {
  const state = decodeCustomId(interaction.customId);
  if (!state) return;
  if (state.action === 'delete') {
    const job = await context.store.get(state.jobId);
    const moderator = isModerator(interaction, context.config);
    if (!job && !moderator) {
      // Purged: who asked for it is no longer known, so "only the person who asked" would be wrong.
      throw new BotRefusal(
        'expired',
        '\u231b This result has expired, so the bot no longer knows who asked for it: a moderator can delete it.',
      );
    }
    if (job?.userId !== interaction.user.id && !moderator) {
      throw new BotRefusal(
        'not_owner',
        '\ud83d\udeab Only the person who asked for these images, or a moderator, can delete them.',
      );
    }
    await interaction.deferUpdate();
    await interaction.deleteReply().catch((error: unknown) => {
      // Two 🗑 clicks raced, or the message was deleted by hand: either way it is gone, as asked.
      if ((error as { code?: unknown }).code !== RESTJSONErrorCodes.UnknownMessage) throw error;
    });
    if (job) await context.store.update(job.id, { status: 'deleted' });
    context.logger.info({ jobId: state.jobId, by: interaction.user.id }, 'result deleted');
    return;
  }
  if (state.action === 'cancel') {
    const job = await context.store.get(state.jobId);
    if (!job) throw new BotRefusal('expired', '\u231b This job is no longer known to the bot.');
    if (job.userId !== interaction.user.id && !isModerator(interaction, context.config)) {
      throw new BotRefusal(
        'not_owner',
        '\ud83d\udeab Only the person who asked for this job, or a moderator, can cancel it.',
      );
    }
    await context.imagine.cancel(job, interaction);
    return;
  }
  const job = await liveJob(context, state.jobId);
  switch (state.action) {
    case 'info': {
      const mine = describeSettings(await loadMemberSettings(context.store, interaction.user.id));
      await interaction.reply({
        content: parametersText(
          job,
          context.sdxl.validate(job.input),
          job.operation &&
            (job.operation.kind === 'vary' && job.operation.sourceName !== undefined
              ? `${operationLabel(job.operation)}, attached by the requester (sdxl-img2img)`
              : `${operationLabel(job.operation)} of job \`${job.operation.sourceJobId}\` (${job.operation.kind === 'vary' ? `sdxl-img2img, strength ${job.operation.strength}` : 'esrgan'})`),
          mine.length
            ? `**Your /settings** (applied under what you type in /imagine): ${mine.join('; ')}`
            : undefined,
        ),
        flags: MessageFlags.Ephemeral,
      });
      return;
    }
    case 'edit': {
      const prompt = new TextInputBuilder()
        .setCustomId(EDIT_PROMPT_FIELD)
        .setStyle(TextInputStyle.Paragraph)
        .setRequired(true)
        .setMaxLength(MAX_PROMPT_LENGTH)
        .setValue(String(job.input.prompt).slice(0, MAX_PROMPT_LENGTH));
      const image = new FileUploadBuilder()
        .setCustomId(EDIT_IMAGE_FIELD)
        .setRequired(false)
        .setMinValues(0)
        .setMaxValues(1);
      await interaction.showModal(
        new ModalBuilder()
          .setCustomId(`${EDIT_MODAL_PREFIX}${job.id}`)
          .setTitle('Edit the prompt (same seed and settings)')
          .addLabelComponents(
            new LabelBuilder().setLabel('Prompt').setTextInputComponent(prompt),
            new LabelBuilder()
              .setLabel('New source image (optional)')
              .setDescription(
                'Vary this image instead: JPEG, PNG or WebP, at most 10 MB and 4096 pixels a side.',
              )
              .setFileUploadComponent(image),
          ),
      );
      return;
    }
    case 'reroll':
      // A variation runs again as a variation of the same image, with a new seed.
      await imagine(interaction, { ...job.input, seed: -1 }, context, job.operation, undefined, job);
      return;
    case 'vary':
    case 'subtle':
    case 'strong':
    case 'up2':
    case 'up4': {
      const index = state.index ?? 0;
      // Refused before anything is queued or billed when the source image is gone.
      const stored = await context.store.image(job.id, index);
      if (!stored)
        throw new BotRefusal('expired', '\u231b This image is no longer stored. Run /imagine again.');
      if (state.action === 'up2' || state.action === 'up4') {
        // The buttons offer only the scales the size allows; an older message may still show others.
        const size = await sizeOf(stored.bytes);
        const scale = state.action === 'up2' ? 2 : 4;
        if (!upscalesFor(size).includes(scale)) {
          throw new BotRefusal(
            'invalid_option',
            `\u26a0\ufe0f This image is ${size.width}\u00d7${size.height} pixels: upscaled ${scale}x it would pass ${MAX_SOURCE_SIDE} pixels a side, the largest the bot makes. Nothing was billed.`,
          );
        }
      }
      const source = { sourceJobId: job.id, sourceIndex: index };
      const operation: JobOperation =
        state.action === 'up2' || state.action === 'up4'
          ? { kind: 'upscale', ...source, scale: state.action === 'up2' ? 2 : 4 }
          : state.action === 'vary'
            ? { kind: 'vary', ...source, strength: STRONG_STRENGTH }
            : {
                kind: 'vary',
                ...source,
                strength: state.action === 'subtle' ? SUBTLE_STRENGTH : STRONG_STRENGTH,
                mode: state.action,
              };
      // A new job through the same queue, quotas and rules as /imagine, with a new seed.
      await imagine(interaction, { ...job.input, seed: -1 }, context, operation, undefined, job);
      return;
    }
    case 'upscale': {
      // It posts publicly like /imagine, so the same servers, channels and roles rules apply.
      checkAccess(interaction, context.config);
      const index = state.index ?? 0;
      const image = await context.store.image(job.id, index);
      if (!image)
        throw new BotRefusal('expired', '\u231b This image is no longer stored. Run /imagine again.');
      // Under a private result, or for a member whose /settings keep results private, the image is
      // posted to the clicker alone, as the result it came from was.
      const settings = await loadMemberSettings(context.store, interaction.user.id);
      const privately =
        job.reply?.private === true ||
        interaction.message.flags.has(MessageFlags.Ephemeral) ||
        settings.private === true;
      await deferPublicly(interaction, { private: privately });
      const bytes = await fitImage(image.bytes, interaction.attachmentSizeLimit ?? DEFAULT_ATTACHMENT_LIMIT);
      if (!bytes) throw new BotRefusal('invalid_option', 'This image is too large to upload here.');
      const name = `${context.config.spoiler ? 'SPOILER_' : ''}sdxl-${job.id.slice(0, 8)}-${index + 1}-full.jpg`;
      await interaction.editReply({
        content: `**U${index + 1}** \u2014 **${String(job.input.prompt).slice(0, 300)}** (seed \`${image.seed}\`) \u2014 <@${interaction.user.id}>`,
        files: [new AttachmentBuilder(bytes, { name })],
        components: [imageRow(job.id, index, upscalesFor(await sizeOf(image.bytes)))],
        allowedMentions: { parse: [] },
      });
      return;
    }
  }
}
