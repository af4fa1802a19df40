import type { GenerateRequest, GeneratedImage } from '@sdxl-kit/client';
import sharp from 'sharp';
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  EmbedBuilder,
  MediaGalleryBuilder,
  MediaGalleryItemBuilder,
  MessageFlags,
  TextDisplayBuilder,
} from 'discord.js';
import { IMAGINE_OPTIONS } from '../commands/imagine-options.ts';
import { formatCredits } from '../credits.ts';
import { encodeCustomId } from '../interactions/custom-id.ts';
import type { JobOperation, JobRecord } from '../store/job-store.ts';
import { composeGrid, fitImage, fitUpscale } from './images.ts';
import { operationLabel, UPSCALE_SCALES, upscalesFor, type UpscaleScale } from './operations.ts';

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
  /** Show the images in a Components V2 media gallery rather than a composed grid (BOT_MEDIA_GALLERY). */
  gallery?: boolean;
}

/** Discord's limit on a media gallery item's description (its alt text). */
const MAX_ALT_TEXT = 1024;

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}\u2026`;
}

function fileName(job: JobRecord, label: string, spoiler: boolean): string {
  return `${spoiler ? 'SPOILER_' : ''}sdxl-${job.id.slice(0, 8)}-${label}.jpg`;
}

/**
 * The row of one image (under a U1–U4 post, a one-image result or an upscale): Upscale 2x / 4x (those
 * in `upscales`: an upscale offers only what its size allows), Vary (Subtle), Vary (Strong). The
 * custom_ids name the job and image the click acts on.
 */
export function imageRow(
  jobId: string,
  index: number,
  upscales: readonly UpscaleScale[] = UPSCALE_SCALES,
): ActionRowBuilder<ButtonBuilder> {
  const button = (action: 'up2' | 'up4' | 'subtle' | 'strong', label: string) =>
    new ButtonBuilder()
      .setCustomId(encodeCustomId({ action, jobId, index }))
      .setLabel(label)
      .setStyle(ButtonStyle.Secondary);
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    ...upscales.map((scale) => button(scale === 2 ? 'up2' : 'up4', `Upscale ${scale}x`)),
    button('subtle', 'Vary (Subtle)'),
    button('strong', 'Vary (Strong)'),
  );
}

/** One of the buttons every result ends with. */
function jobButton(job: JobRecord, action: 'reroll' | 'edit' | 'info' | 'delete') {
  const [emoji, label] = {
    reroll: ['\ud83d\udd04', 'New seed'],
    edit: ['\u270f\ufe0f', 'Edit prompt'],
    info: ['\u2139\ufe0f', 'Parameters'],
    delete: ['\ud83d\uddd1\ufe0f', 'Delete'],
  }[action];
  return new ButtonBuilder()
    .setCustomId(encodeCustomId({ action, jobId: job.id }))
    .setEmoji(emoji!)
    .setLabel(label!)
    .setStyle(action === 'delete' ? ButtonStyle.Danger : ButtonStyle.Secondary);
}

/**
 * The buttons under a result: U1–U4 and V1–V4 when there are several images (the image row when there
 * is one), then 🔄 ✏️ ℹ️ 🗑.
 */
export function resultButtons(
  job: JobRecord,
  imageCount: number,
  upscales: readonly UpscaleScale[] = UPSCALE_SCALES,
): ActionRowBuilder<ButtonBuilder>[] {
  const rows: ActionRowBuilder<ButtonBuilder>[] = [];
  if (imageCount > 1) {
    for (const [action, letter] of [
      ['upscale', 'U'],
      ['vary', 'V'],
    ] as const) {
      const row = new ActionRowBuilder<ButtonBuilder>();
      for (let index = 0; index < imageCount; index++) {
        row.addComponents(
          new ButtonBuilder()
            .setCustomId(encodeCustomId({ action, jobId: job.id, index }))
            .setLabel(`${letter}${index + 1}`)
            .setStyle(ButtonStyle.Secondary),
        );
      }
      rows.push(row);
    }
  } else if (imageCount === 1) {
    rows.push(imageRow(job.id, 0, upscales));
  }
  rows.push(
    new ActionRowBuilder<ButtonBuilder>().addComponents(
      (['reroll', 'edit', 'info', 'delete'] as const).map((action) => jobButton(job, action)),
    ),
  );
  return rows;
}

/** An image's size in pixels, read from its header. */
export async function sizeOf(bytes: Buffer): Promise<{ width: number; height: number }> {
  const { width = 0, height = 0 } = await sharp(bytes, { limitInputPixels: false }).metadata();
  return { width, height };
}

/** Bytes as "3.2 MB" (MiB, as Discord counts its limits). */
function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * An upscale's message, a result like the others: the image (re-encoded as JPEG at a lower quality if it
 * is over the limit, and the message says so), what it is, the seed and credits, Vary (Subtle / Strong),
 * Upscale again where the size allows (see `upscalesFor`), ℹ️ and 🗑. In the media gallery when
 * `details.gallery` is set, as every result is.
 */
export async function upscaleReply(
  job: JobRecord,
  image: { bytes: Buffer },
  details: ResultDetails & { scale: number },
) {
  const fitted = await fitUpscale(image.bytes, details.attachmentLimit);
  const { width, height } = await sizeOf(image.bytes);
  const notes: string[] = [];
  if (!fitted) {
    notes.push(
      `\u26a0\ufe0f The ${details.scale}x image (${megabytes(image.bytes.length)}) is too large to upload here (the limit is ${megabytes(details.attachmentLimit)}), even compressed. Try Upscale 2x.`,
    );
  } else if (fitted.quality !== undefined) {
    notes.push(
      `\ud83d\udddc\ufe0f Re-encoded as JPEG at quality ${fitted.quality} to fit the ${megabytes(details.attachmentLimit)} upload limit here (the upscale was ${megabytes(image.bytes.length)}); same size in pixels.`,
    );
  }
  if (details.lowCredits) notes.push(lowCreditsNote(details));
  const files = fitted
    ? [new AttachmentBuilder(fitted.bytes, { name: fileName(job, `${details.scale}x`, details.spoiler) })]
    : [];
  const rows = [
    imageRow(job.id, 0, upscalesFor({ width, height })),
    new ActionRowBuilder<ButtonBuilder>().addComponents(jobButton(job, 'info'), jobButton(job, 'delete')),
  ];
  return composeMessage(job, {
    files,
    notes,
    footer: footerLine(job, `${width}\u00d7${height}`, details),
    rows,
    details,
  });
}

/** The line under a result: its seed, what it holds and the credits left. */
function footerLine(job: JobRecord, holds: string, details: ResultDetails): string {
  const credits =
    details.remainingCredits === undefined ? 'unknown' : formatCredits(details.remainingCredits);
  return `Seed \`${job.seed ?? 'random'}\` \u00b7 ${holds} \u00b7 credits left: ${credits}`;
}

/** What a result is and whose, above it: "**Vary (Strong) of image 2** — **prompt** — @user". */
function heading(job: JobRecord, notes: readonly string[]): string {
  const label = job.operation ? `**${operationLabel(job.operation)}** \u2014 ` : '';
  return [`${label}**${shorten(String(job.input.prompt), 300)}** \u2014 <@${job.userId}>`, ...notes].join(
    '\n',
  );
}

/** What a result message is made of, whatever its layout. */
interface MessageParts {
  files: AttachmentBuilder[];
  /** Lines under the heading: low credits, images that did not fit. */
  notes: string[];
  /** The seed, what the message holds and the credits left. */
  footer: string;
  rows: ActionRowBuilder<ButtonBuilder>[];
  details: ResultDetails;
}

/**
 * A result message without a composed grid: in the media gallery (Components V2) when `details.gallery`
 * is set, else the heading and footer as text with the files attached.
 */
function composeMessage(job: JobRecord, parts: MessageParts) {
  if (parts.details.gallery) return galleryMessage(job, parts);
  return {
    content: [heading(job, parts.notes), `-# ${parts.footer}`].join('\n'),
    embeds: [],
    files: parts.files,
    components: parts.rows,
    allowedMentions: { parse: [] },
  };
}

/**
 * The result: every image attached (re-encoded if over the limit), the prompt, seed and remaining
 * credits, a warning when credits run low, and buttons; in the media gallery, or (`gallery` off) with
 * a 2x2 grid as the embed's preview, the seed and credits in its fields.
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
  const notes: string[] = [];
  if (details.lowCredits) notes.push(lowCreditsNote(details));
  if (skipped > 0) notes.push(`${skipped} image(s) were too large to upload here even after compressing.`);
  // A one-image result carries the image row, whose Upscale buttons depend on the image's size (a
  // variation of an upscale is as large as its source).
  const upscales = images.length === 1 ? upscalesFor(await sizeOf(images[0]!.bytes)) : UPSCALE_SCALES;
  const rows = resultButtons(job, images.length, upscales);
  if (details.gallery) {
    const count = images.length;
    const footer = footerLine(job, `${count} image${count === 1 ? '' : 's'}`, details);
    return galleryMessage(job, { files, notes, footer, rows, details });
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
  // The prompt is in the heading above; the embed holds the grid and the figures, not the prompt again.
  const embed = new EmbedBuilder().setColor(details.lowCredits ? 0xf0b232 : 0x5865f2).addFields(
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
  return {
    content: heading(job, notes),
    embeds: [embed],
    files,
    components: rows,
    allowedMentions: { parse: [] },
  };
}

function lowCreditsNote(details: ResultDetails): string {
  return `\u26a0\ufe0f Credits are running low${details.remainingCredits === undefined ? '' : ` (${formatCredits(details.remainingCredits)} left)`}; ${details.adminsTold ? 'the admins have been told' : 'an admin needs to top up the account'}.`;
}

/**
 * A result as a Components V2 message: the heading, the images in Discord's media gallery (each with
 * the prompt as alt text, spoilered when BOT_SPOILER is set), the footer and the buttons in action
 * rows. No composed grid: the gallery lays out up to 10 images itself. V2 takes no `content` or
 * embeds, so both are emptied (the message being edited held the status text).
 */
function galleryMessage(job: JobRecord, parts: MessageParts) {
  const prompt = String(job.input.prompt);
  const { files } = parts;
  const components: (TextDisplayBuilder | MediaGalleryBuilder | ActionRowBuilder<ButtonBuilder>)[] = [
    new TextDisplayBuilder().setContent(heading(job, parts.notes)),
  ];
  if (files.length > 0) {
    components.push(
      new MediaGalleryBuilder().addItems(
        files.map((file, index) =>
          new MediaGalleryItemBuilder()
            .setURL(`attachment://${file.name}`)
            .setDescription(
              shorten(
                files.length > 1 ? `${prompt} (${index + 1} of ${files.length})` : prompt,
                MAX_ALT_TEXT,
              ),
            )
            .setSpoiler(parts.details.spoiler),
        ),
      ),
    );
  }
  components.push(new TextDisplayBuilder().setContent(`-# ${parts.footer}`), ...parts.rows);
  return {
    content: '',
    embeds: [],
    files,
    components,
    flags: MessageFlags.IsComponentsV2 as const,
    allowedMentions: { parse: [] },
  };
}

/**
 * Every parameter a job sent, for the ℹ️ button: the validated request with the defaults filled in,
 * named as the /imagine options are and with the seed actually used, so the result can be made again.
 */
export function parametersText(
  job: JobRecord,
  request: GenerateRequest,
  heading?: string,
  footer?: string,
): string {
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
  const head = `**Parameters** (job \`${job.id}\`, <t:${created}:R>)${heading ? `\n${heading}` : ''}`;
  return shorten(`${head}${footer ? `\n${footer}` : ''}\n\`\`\`yaml\n${lines}\n\`\`\``, 2000);
}

/**
 * The status while a job waits, with the pace that makes it wait; position 0 waits for the pace only.
 * `startsAt` (epoch ms) is the estimate of when it starts, shown in the reader's own time by Discord.
 */
export function queuedText(
  position: number,
  prompt: string,
  pace: { maxInFlight: number; perMinute: number },
  startsAt?: number,
): string {
  if (position === 0) {
    return `\u23f3 **${shorten(prompt, 200)}** \u2014 starting soon: the bot starts at most ${pace.perMinute} jobs a minute.`;
  }
  const estimate =
    startsAt === undefined
      ? ''
      : ` It should start <t:${Math.ceil(startsAt / 1000)}:R> (estimated from the last jobs).`;
  return (
    `\u23f3 **${shorten(prompt, 200)}** \u2014 queued, position **${position}**.${estimate} ` +
    `The bot makes up to ${pace.maxInFlight} images at a time and starts at most ${pace.perMinute} jobs a minute; this message updates as the line moves.`
  );
}

/** ❌ Cancel under a job waiting in line: the requester or a moderator takes it out before it is sent. */
export function cancelRow(jobId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder()
      .setCustomId(encodeCustomId({ action: 'cancel', jobId }))
      .setEmoji('\u274c')
      .setLabel('Cancel')
      .setStyle(ButtonStyle.Danger),
  );
}

export function generatingText(prompt: string, samples: number, operation?: JobOperation): string {
  if (operation?.kind === 'upscale')
    return `\ud83d\udd0d **${shorten(prompt, 200)}** \u2014 upscaling ${operation.scale}x\u2026`;
  return `\ud83c\udfa8 **${shorten(prompt, 200)}** \u2014 making ${samples} ${operation ? 'variation' : 'image'}${samples === 1 ? '' : 's'}\u2026`;
}
