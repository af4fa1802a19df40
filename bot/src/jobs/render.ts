import type { GenerateRequest, GeneratedImage } from '@sdxl-kit/client';
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder } from 'discord.js';
import { IMAGINE_OPTIONS } from '../commands/imagine-options.ts';
import { formatCredits } from '../credits.ts';
import { encodeCustomId } from '../interactions/custom-id.ts';
import type { JobRecord } from '../store/job-store.ts';
import { composeGrid, fitImage } from './images.ts';

/** Discord's default upload limit per attachment when the interaction does not say. */
export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;

export interface ResultDetails {
  remainingCredits: number | undefined;
  lowCredits: boolean;
  spoiler: boolean;
  /** Whether low-credit notices reach an admin channel (BOT_ADMIN_CHANNEL_ID is set). */
  adminsTold: boolean;
  /** Per attachment, from the interaction. */
  attachmentLimit: number;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}\u2026`;
}

function fileName(job: JobRecord, label: string, spoiler: boolean): string {
  return `${spoiler ? 'SPOILER_' : ''}sdxl-${job.id.slice(0, 8)}-${label}.jpg`;
}

/** The buttons under a result: U1–U4 when there are several images, then 🔄 ✏️ ℹ️ 🗑. */
export function resultButtons(job: JobRecord, imageCount: number): ActionRowBuilder<ButtonBuilder>[] {
  const rows: ActionRowBuilder<ButtonBuilder>[] = [];
  if (imageCount > 1) {
    const upscale = new ActionRowBuilder<ButtonBuilder>();
    for (let index = 0; index < imageCount; index++) {
      upscale.addComponents(
        new ButtonBuilder()
          .setCustomId(encodeCustomId({ action: 'upscale', jobId: job.id, index }))
          .setLabel(`U${index + 1}`)
          .setStyle(ButtonStyle.Secondary),
      );
    }
    rows.push(upscale);
  }
  const button = (action: 'reroll' | 'edit' | 'info' | 'delete', emoji: string, label: string) =>
    new ButtonBuilder()
      .setCustomId(encodeCustomId({ action, jobId: job.id }))
      .setEmoji(emoji)
      .setLabel(label)
      .setStyle(action === 'delete' ? ButtonStyle.Danger : ButtonStyle.Secondary);
  rows.push(
    new ActionRowBuilder<ButtonBuilder>().addComponents(
      button('reroll', '\ud83d\udd04', 'New seed'),
      button('edit', '\u270f\ufe0f', 'Edit prompt'),
      button('info', '\u2139\ufe0f', 'Parameters'),
      button('delete', '\ud83d\uddd1\ufe0f', 'Delete'),
    ),
  );
  return rows;
}

/**
 * The result: every image attached (re-encoded if over the limit), a 2x2 grid as the preview when
 * there are several, the prompt, seed and remaining credits, a warning when credits run low, and buttons.
 */
export async function resultReply(job: JobRecord, images: readonly GeneratedImage[], details: ResultDetails) {
  const files: AttachmentBuilder[] = [];
  let skipped = 0;
  for (const image of images) {
    const bytes = await fitImage(image.bytes, details.attachmentLimit);
    if (!bytes) {
      skipped++;
      continue;
    }
    files.push(
      new AttachmentBuilder(bytes, { name: fileName(job, String(image.index + 1), details.spoiler) }),
    );
  }
  let preview = files[0]?.name ?? undefined;
  if (images.length > 1) {
    const grid = await composeGrid(
      images.map((image) => image.bytes),
      details.attachmentLimit,
    );
    if (grid) {
      const name = fileName(job, 'grid', details.spoiler);
      files.unshift(new AttachmentBuilder(grid, { name }));
      preview = name;
    }
  }
  const prompt = String(job.input.prompt);
  const embed = new EmbedBuilder()
    .setColor(details.lowCredits ? 0xf0b232 : 0x5865f2)
    .setDescription(shorten(prompt, 4000))
    .addFields(
      { name: 'Seed', value: `\`${job.seed ?? 'random'}\``, inline: true },
      { name: 'Images', value: String(images.length), inline: true },
      {
        name: 'Credits left',
        value: details.remainingCredits === undefined ? 'unknown' : formatCredits(details.remainingCredits),
        inline: true,
      },
    );
  // A spoilered attachment shown inside an embed would not be hidden, so spoilers stay plain attachments.
  if (preview && !details.spoiler) embed.setImage(`attachment://${preview}`);
  const notes: string[] = [];
  if (details.lowCredits) {
    notes.push(
      `\u26a0\ufe0f Credits are running low${details.remainingCredits === undefined ? '' : ` (${formatCredits(details.remainingCredits)} left)`}; ${details.adminsTold ? 'the admins have been told' : 'an admin needs to top up the account'}.`,
    );
  }
  if (skipped > 0) notes.push(`${skipped} image(s) were too large to upload here even after compressing.`);
  return {
    content: [`**${shorten(prompt, 300)}** \u2014 <@${job.userId}>`, ...notes].join('\n'),
    embeds: [embed],
    files,
    components: resultButtons(job, images.length),
    allowedMentions: { parse: [] },
  };
}

/**
 * Every parameter a job sent, for the ℹ️ button: the validated request with the defaults filled in,
 * named as the /imagine options are and with the seed actually used, so the result can be made again.
 */
export function parametersText(job: JobRecord, request: GenerateRequest): string {
  const sent: [string, unknown][] = [
    ...IMAGINE_OPTIONS.map(({ option, field }): [string, unknown] => [option, request[field]]),
    // Not options of the command, but sent all the same.
    ['width', request.width],
    ['height', request.height],
  ];
  const lines = sent
    .map(([name, value]) => (name === 'seed' ? [name, job.seed ?? value] : [name, value]))
    .map(([name, value]) => `${name}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
    .join('\n');
  const created = Math.floor(job.createdAt / 1000);
  return shorten(`**Parameters** (job \`${job.id}\`, <t:${created}:R>)\n\`\`\`yaml\n${lines}\n\`\`\``, 2000);
}

/** The status while a job waits, with the pace that makes it wait; position 0 waits for the pace only. */
export function queuedText(
  position: number,
  prompt: string,
  pace: { maxInFlight: number; perMinute: number },
): string {
  if (position === 0) {
    return `\u23f3 **${shorten(prompt, 200)}** \u2014 starting soon: the bot starts at most ${pace.perMinute} jobs a minute.`;
  }
  return (
    `\u23f3 **${shorten(prompt, 200)}** \u2014 queued, position **${position}**. ` +
    `The bot makes up to ${pace.maxInFlight} images at a time and starts at most ${pace.perMinute} jobs a minute; this message updates as the line moves.`
  );
}

export function generatingText(prompt: string, samples: number): string {
  return `\ud83c\udfa8 **${shorten(prompt, 200)}** \u2014 making ${samples} image${samples === 1 ? '' : 's'}\u2026`;
}
