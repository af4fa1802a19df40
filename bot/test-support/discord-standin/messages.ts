/** One attachment as a user would receive it. */
export interface StandinAttachment {
  id: string;
  filename: string;
  size: number;
  contentType: string;
  bytes: Buffer;
  description?: string;
}

/** A message as the stand-in holds it: what a user sees in the channel, with its history. */
export interface StandinMessage {
  id: string;
  channelId: string;
  /** The interaction token that owns it, for webhook routes. */
  interactionToken?: string;
  content: string;
  embeds: Record<string, unknown>[];
  components: Record<string, unknown>[];
  attachments: StandinAttachment[];
  flags: number;
  /** Only the requester sees it (flag 64). */
  ephemeral: boolean;
  /** Discord's "is thinking…" state after a deferred reply. */
  loading: boolean;
  deleted: boolean;
  /** Users its content mentions and its `allowed_mentions` lets Discord notify, as of its last state. */
  pings: string[];
  /** Every state it went through, oldest first (content and attachment names), for position updates. */
  history: { content: string; attachments: string[]; embeds: number }[];
  createdAt: number;
}

/** A file sent as `files[n]` in a multipart body. */
export interface UploadedFile {
  index: number;
  filename: string;
  contentType: string;
  bytes: Buffer;
}

/** The JSON shape discord.js turns into a `Message`. */
export function toApiMessage(
  message: StandinMessage,
  botUser: Record<string, unknown>,
  applicationId: string,
) {
  return {
    id: message.id,
    type: 0,
    channel_id: message.channelId,
    author: botUser,
    content: message.content,
    timestamp: new Date(message.createdAt).toISOString(),
    edited_timestamp: message.history.length > 1 ? new Date().toISOString() : null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: message.attachments.map((attachment) => ({
      id: attachment.id,
      filename: attachment.filename,
      size: attachment.size,
      content_type: attachment.contentType,
      url: `https://cdn.standin.invalid/attachments/${message.channelId}/${attachment.id}/${attachment.filename}`,
      proxy_url: `https://media.standin.invalid/attachments/${message.channelId}/${attachment.id}/${attachment.filename}`,
      ...(attachment.description !== undefined && { description: attachment.description }),
    })),
    embeds: message.embeds,
    components: message.components,
    pinned: false,
    flags: message.flags | (message.loading ? 128 : 0),
    webhook_id: applicationId,
    application_id: applicationId,
  };
}

/**
 * Applies a create/edit payload the way Discord does: fields left out stay; `attachments` lists what to
 * keep (existing ids) and which uploaded `files[n]` to add (id n); uploads without that list are appended.
 */
export function applyPayload(
  message: StandinMessage,
  payload: Record<string, unknown>,
  files: readonly UploadedFile[],
  newId: () => string,
): void {
  if (typeof payload.content === 'string') message.content = payload.content;
  message.pings = pinged(message.content, payload.allowed_mentions);
  if (Array.isArray(payload.embeds)) message.embeds = payload.embeds as Record<string, unknown>[];
  if (Array.isArray(payload.components)) message.components = payload.components as Record<string, unknown>[];
  if (typeof payload.flags === 'number') {
    // Edits do not drop EPHEMERAL or IS_COMPONENTS_V2 (the stand-in refuses an edit that tries the latter).
    message.flags = payload.flags | (message.ephemeral ? 64 : 0);
    if (payload.flags & 64) message.ephemeral = true;
  }
  const upload = (file: UploadedFile, description?: string): StandinAttachment => ({
    id: newId(),
    filename: file.filename,
    size: file.bytes.length,
    contentType: file.contentType,
    bytes: file.bytes,
    ...(description !== undefined && { description }),
  });
  if (Array.isArray(payload.attachments)) {
    const next: StandinAttachment[] = [];
    for (const entry of payload.attachments as { id: string | number; description?: string }[]) {
      const existing = message.attachments.find((attachment) => attachment.id === String(entry.id));
      const file = files.find((candidate) => String(candidate.index) === String(entry.id));
      if (file) next.push(upload(file, entry.description));
      else if (existing) next.push(existing);
    }
    message.attachments = next;
  } else {
    for (const file of files) message.attachments.push(upload(file));
  }
  message.loading = false;
  message.history.push({
    content: message.content,
    attachments: message.attachments.map((attachment) => attachment.filename),
    embeds: message.embeds.length,
  });
}

/** Users a message notifies: `<@id>` in its content, as far as `allowed_mentions` lets them (all when absent). */
function pinged(content: string, allowed: unknown): string[] {
  const mentioned = [...content.matchAll(/<@!?(\d+)>/g)].map((match) => match[1]!);
  if (!allowed || typeof allowed !== 'object') return mentioned;
  const { parse, users } = allowed as { parse?: unknown; users?: unknown };
  if (Array.isArray(parse) && parse.includes('users')) return mentioned;
  return mentioned.filter((id) => Array.isArray(users) && users.includes(id));
}
