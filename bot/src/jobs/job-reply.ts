import {
  InteractionWebhook,
  MessageFlags,
  RESTJSONErrorCodes,
  type Client,
  type InteractionEditReplyOptions,
  type MessageCreateOptions,
  type RepliableInteraction,
} from 'discord.js';
import type { JobRecord, StoredReply } from '../store/job-store.ts';
import { DEFAULT_ATTACHMENT_LIMIT } from './render.ts';

/** Discord's interaction tokens live 15 minutes from the interaction. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;

/** Edits stop this long before the token dies, so one in flight does not race the expiry. */
const TOKEN_MARGIN_MS = 5_000;

/** What a webhook edit answers when the reply can no longer be edited: token dead, or message gone. */
const GONE: ReadonlySet<unknown> = new Set([
  RESTJSONErrorCodes.InvalidWebhookToken,
  RESTJSONErrorCodes.UnknownWebhook,
  RESTJSONErrorCodes.UnknownMessage,
  RESTJSONErrorCodes.UnknownInteraction,
]);

export type ReplyOptions = InteractionEditReplyOptions;

/** The part of a job's interaction a restarted process needs to answer it (see {@link StoredReply}). */
export function storedReply(
  interaction: RepliableInteraction,
  messageId?: string,
  only?: 'private',
): StoredReply {
  return {
    applicationId: interaction.applicationId,
    token: interaction.token,
    expiresAt: interaction.createdTimestamp + TOKEN_LIFETIME_MS,
    ...(interaction.attachmentSizeLimit !== undefined && {
      attachmentLimit: interaction.attachmentSizeLimit,
    }),
    ...(messageId && { messageId }),
    ...(only === 'private' && { private: true }),
  };
}

/**
 * Where one job's messages go. While the interaction token lives its original reply is edited: through
 * the interaction this process received, or, after a restart, through the webhook the stored token
 * names. Once the token is dead (or Discord says so), status edits are dropped and the job's last
 * word is posted in its channel, mentioning the requester (sent to the requester directly when the
 * reply was private), so no job ends unheard.
 */
export class JobReply {
  /** The interaction this process received, when it did: replies that must stay private need it. */
  readonly interaction: RepliableInteraction | undefined;
  readonly attachmentLimit: number;
  private readonly client: Client;
  private readonly job: JobRecord;
  private readonly edit: ((options: ReplyOptions) => Promise<unknown>) | undefined;
  private readonly expiresAt: number;
  private readonly messageId: string | undefined;
  private readonly onlyRequester: boolean;
  /** Discord said the reply can no longer be edited. */
  private gone = false;

  private constructor(
    client: Client,
    job: JobRecord,
    reply: StoredReply | undefined,
    interaction?: RepliableInteraction,
  ) {
    this.client = client;
    this.job = job;
    this.interaction = interaction;
    this.expiresAt = reply?.expiresAt ?? 0;
    this.messageId = reply?.messageId;
    this.onlyRequester = reply?.private === true;
    this.attachmentLimit = reply?.attachmentLimit ?? DEFAULT_ATTACHMENT_LIMIT;
    if (interaction) this.edit = (options) => interaction.editReply(options);
    else if (reply) {
      const webhook = new InteractionWebhook(client as Client<true>, reply.applicationId, reply.token);
      this.edit = (options) => webhook.editMessage('@original', options);
    }
  }

  /** The reply of a job this process received. */
  static live(client: Client, job: JobRecord, interaction: RepliableInteraction): JobReply {
    return new JobReply(client, job, job.reply ?? storedReply(interaction), interaction);
  }

  /** The reply of a job a previous process received, from what the store kept. */
  static stored(client: Client, job: JobRecord): JobReply {
    return new JobReply(client, job, job.reply);
  }

  /** Whether the original reply can still be edited. */
  get editable(): boolean {
    return !this.gone && this.edit !== undefined && Date.now() < this.expiresAt - TOKEN_MARGIN_MS;
  }

  /**
   * A status edit (position, "making…"): made while the reply is editable, dropped after (a message
   * in the channel for each would be noise). Resolves false when dropped.
   * @throws when Discord refuses the edit for another reason than the reply being gone.
   */
  async update(options: ReplyOptions): Promise<boolean> {
    if (!this.editable) return false;
    try {
      await this.edit!(options);
      return true;
    } catch (error) {
      if (!GONE.has((error as { code?: unknown }).code)) throw error;
      this.gone = true;
      return false;
    }
  }

  /**
   * The job's last word (its result, or why it ended): edited into the original reply while that is
   * editable, else posted in the job's channel with the requester mentioned.
   * @throws when neither Discord call worked.
   */
  async finish(options: ReplyOptions): Promise<'edited' | 'posted'> {
    if (this.editable) {
      try {
        await this.edit!(options);
        return 'edited';
      } catch (error) {
        if (!GONE.has((error as { code?: unknown }).code)) throw error;
        this.gone = true;
      }
    }
    await this.post(options);
    return 'posted';
  }

  private async post(given: ReplyOptions): Promise<void> {
    const { job } = this;
    // A Components V2 result (the media gallery) carries no content, not even an empty one, in a new
    // message; its heading already mentions the requester.
    const v2 = (Number(given.flags ?? 0) & MessageFlags.IsComponentsV2) !== 0;
    const { content: _none, ...rest } = given;
    const options: ReplyOptions = v2 ? rest : given;
    if (this.onlyRequester) {
      // A result the requester keeps to themselves must not turn public: it goes to them directly.
      const user = await this.client.users.fetch(job.userId);
      await user.send({ ...(options as MessageCreateOptions), allowedMentions: { parse: [] } });
      return;
    }
    if (!job.channelId) throw new Error('the job has no channel to post in');
    // The guild may not be in this process's cache: a worker joins no gateway, and a shard holds only
    // its own guilds while any process may run any job. Posting needs the channel only, not its guild.
    const channel = await this.client.channels.fetch(job.channelId, { allowUnknownGuild: true });
    if (!channel?.isSendable()) throw new Error(`channel ${job.channelId} does not take messages`);
    const mention = `<@${job.userId}>`;
    const content = options.content ?? '';
    const posted = await channel.send({
      ...(options as MessageCreateOptions),
      ...(!v2 && { content: content.includes(mention) ? content : `${mention} ${content}`.trim() }),
      allowedMentions: { users: [job.userId] },
    });
    // The old reply would say "making…" forever: the bot may edit its own public message through the
    // channel once the token is dead. Best effort: the post above is what the requester needed.
    // Built here: discord.js takes the guild from its cache, which a worker or another shard lacks
    // (its `posted.url` would then point at a direct message).
    const link = `https://discord.com/channels/${job.guildId ?? '@me'}/${posted.channelId}/${posted.id}`;
    if (this.messageId && 'messages' in channel) {
      await channel.messages
        .edit(this.messageId, {
          content: `\u2935\ufe0f Finished after this reply could no longer be updated, so the result was posted in the channel: ${link}`,
          embeds: [],
          components: [],
          files: [],
          attachments: [],
          allowedMentions: { parse: [] },
        })
        .catch(() => undefined);
    }
  }
}
