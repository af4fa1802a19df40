import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { applyPayload, toApiMessage, type StandinMessage, type UploadedFile } from './messages.ts';
import { DiscordRateLimits, type RateLimitSettings } from './rate-limits.ts';

/** A guild the bot is in, with its text channels and roles. */
export interface StandinGuild {
  id: string;
  name?: string;
  channels: string[];
  roles?: string[];
}

export interface StandinOptions {
  /** The bot token the stand-in accepts on REST and on IDENTIFY. */
  token: string;
  applicationId?: string;
  guilds?: StandinGuild[];
  /** Sent as `attachment_size_limit` on interactions and enforced per file (413, code 40005). @default 10 MiB */
  attachmentSizeLimit?: number;
  /** A first answer later than this is refused (404, code 10062), as Discord does. @default 3000 */
  ackDeadlineMs?: number;
  /** Webhook calls with an interaction token older than this are refused (401, code 50027). @default 15 min */
  tokenLifetimeMs?: number;
  /** The shard count GET /gateway/bot recommends. @default 1 */
  shards?: number;
  /** `session_start_limit.max_concurrency` of GET /gateway/bot: identifies allowed at once. @default 1 */
  maxConcurrency?: number;
  /**
   * Which of the sessions logged in as the interaction's shard receive it. `'every-session'` is what
   * Discord does (copies of a bot logged in as one shard all receive every event, and the first answer
   * wins); `'one-session'` hands each to one of them in turn, for tests of one copy. @default 'one-session'
   */
  interactionDelivery?: 'one-session' | 'every-session';
  /**
   * Enforce Discord's REST rate limits (`rate-limits.ts`): true for Discord's figures, or some of them
   * replaced. @default off
   */
  rateLimits?: boolean | Partial<RateLimitSettings>;
}

/** The shard Discord sends a guild's events to: `(guild_id >> 22) % shard_count`. */
export function shardOf(guildId: string, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
}

/** Who clicks or types, and with what standing in the guild. */
export interface Actor {
  userId: string;
  username?: string;
  guildId?: string;
  channelId?: string;
  roles?: string[];
  /** Permission bit field as Discord sends it (a decimal string). @default '0' (a plain member) */
  permissions?: string;
}

/** One callback the bot answered an interaction with. */
export interface CallbackRecord {
  type: number;
  data: Record<string, unknown> | undefined;
  at: number;
}

/** An interaction as dispatched, and how the bot answered it. */
export interface InteractionRecord {
  id: string;
  token: string;
  type: number;
  actor: Required<Pick<Actor, 'userId' | 'guildId' | 'channelId'>>;
  dispatchedAt: number;
  callbacks: CallbackRecord[];
  /** The message `@original` points at, once there is one. */
  originalMessageId?: string;
  followupIds: string[];
  /** For button clicks and modals opened from one: the message the component is on. */
  sourceMessageId?: string;
  /** The bot answered after Discord's 3 seconds: the user saw "The application did not respond". */
  missedAck?: boolean;
  /** Gateway sessions the interaction was sent to. */
  deliveredTo: number;
  /** Answers refused because one had come already (400, code 40060): another copy answered first. */
  refusedCallbacks: number;
}

/** A file a user attaches to a command option or uploads in a modal. */
export interface StandinUpload {
  filename: string;
  bytes: Buffer;
  /** What Discord reports; it guesses from the name, so a test may make it lie. @default image/png */
  contentType?: string;
  /** The size Discord reports. @default the real size */
  size?: number;
}

/** An uploaded file as a command option value or modal field value: served by the stand-in's CDN. */
export interface AttachmentRef {
  readonly attachmentId: string;
  readonly url: string;
}

/** A GET the stand-in's CDN served, with the headers it came with (to show no secret was sent). */
export interface CdnRecord {
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A role picked for a role option. */
export interface RoleRef {
  readonly roleId: string;
}

/** A value typed or picked for a command option. */
export type OptionValue = string | number | boolean | AttachmentRef | RoleRef;

/** A REST call the stand-in received (method, route and whether it carried files). */
export interface RestRecord {
  method: string;
  path: string;
  multipart: boolean;
  status: number;
}

export interface DiscordStandin {
  /** For `new Client({ rest: { api } })` and `new REST({ api })`. */
  readonly apiUrl: string;
  readonly port: number;
  readonly applicationId: string;
  readonly botUserId: string;
  readonly messages: StandinMessage[];
  readonly interactions: Map<string, InteractionRecord>;
  readonly rest: RestRecord[];
  /** Downloads of uploaded files from the stand-in's CDN. */
  readonly cdn: CdnRecord[];
  /** Commands registered with PUT, by scope: 'global' or the guild id. */
  readonly commands: Map<string, Record<string, unknown>[]>;
  /** The rate limits enforced (with every 429 answered), when `rateLimits` was given. */
  readonly rateLimits: DiscordRateLimits | undefined;
  /**
   * Resolves once `sessions` clients (default 1) have identified and received their guilds; rejects
   * after `timeoutMs` (30 s).
   */
  waitForGateway(timeoutMs?: number, sessions?: number): Promise<void>;
  /** Gateway connections identified now: several bot processes may log in with one token. */
  readonly gatewaySessions: number;
  /** The `[shard_id, shard_count]` each identified connection gave in IDENTIFY, in the order they came. */
  readonly gatewayShards: [number, number][];
  /** A file as the user attaches it: pass the result as an attachment option's or a file upload's value. */
  upload(file: StandinUpload): AttachmentRef;
  /** Types a slash command: `options` are the values as the user filled them in. */
  slash(
    actor: Actor,
    name: string,
    options?: Record<string, OptionValue>,
    subcommand?: string,
  ): InteractionRecord;
  /** Focuses an option while typing; resolves with the choices the bot offered. */
  autocomplete(
    actor: Actor,
    name: string,
    focused: string,
    options?: Record<string, string | number | boolean>,
  ): Promise<{ name: string; value: string | number }[]>;
  clickButton(actor: Actor, message: StandinMessage, customId: string): InteractionRecord;
  /** The direct-message channel the bot opened with a user, if it did. */
  dmChannelOf(userId: string): string | undefined;
  /** Ends an interaction's token now, as 15 minutes would: its webhook calls answer 401 (code 50027). */
  expireToken(interaction: InteractionRecord): void;
  /** Changes the attachment size limit for interactions and uploads from now on (a server losing its boost). */
  setAttachmentSizeLimit(bytes: number): void;
  /**
   * Submits a modal: text for text inputs, uploads for file uploads. The answer is shaped as the modal the
   * bot showed with that custom_id (fields inside Labels or in action rows), as Discord does.
   */
  submitModal(
    actor: Actor,
    customId: string,
    fields: Record<string, string | AttachmentRef[]>,
    source?: StandinMessage,
  ): InteractionRecord;
  message(id: string): StandinMessage | undefined;
  /** The message an interaction's `@original` points at. */
  original(interaction: InteractionRecord): StandinMessage | undefined;
  /**
   * Resolves with the predicate's first truthy value, re-checked on every change; rejects after
   * `timeoutMs` (30 s: generous, so a test on a loaded machine is slow rather than failing).
   */
  waitFor<T>(predicate: () => T | undefined | false | null, what: string, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/**
 * What Discord would refuse in a modal: a text input or file upload must sit in an action row or (file
 * uploads only in) a Label with a label; a file upload takes 0–10 files.
 */
function modalProblem(data: Record<string, unknown>): string | undefined {
  const components = (data.components ?? []) as Record<string, unknown>[];
  if (components.length < 1 || components.length > 5) return 'a modal has 1 to 5 components';
  for (const component of components) {
    if (component.type === 1) {
      const inner = (component.components ?? []) as Record<string, unknown>[];
      if (inner.some((field) => field.type !== 4)) return 'an action row in a modal holds text inputs only';
    } else if (component.type === 18) {
      const label = component.label;
      if (typeof label !== 'string' || label.length < 1 || label.length > 45)
        return 'a Label needs a label of 1 to 45 characters';
      const inner = component.component as Record<string, unknown> | undefined;
      if (!inner || ![3, 4, 5, 6, 7, 8, 19].includes(Number(inner.type)))
        return 'a Label holds one interactive component';
      if (inner.type === 4 && 'label' in inner) return 'a text input inside a Label has no label of its own';
      if (inner.type === 19) {
        const min = Number(inner.min_values ?? 1);
        const max = Number(inner.max_values ?? 1);
        if (min < 0 || max > 10 || min > max) return 'a file upload takes 0 to 10 files';
      }
    } else if (component.type !== 10) {
      return `component type ${String(component.type)} is not allowed at the top of a modal`;
    }
  }
  return undefined;
}

const IS_COMPONENTS_V2 = 1 << 15;
/** A message about to be created, for the checks of a create. */
const BLANK = {
  flags: 0,
  content: '',
  embeds: [],
  components: [],
  attachments: [],
} as unknown as StandinMessage;
/** Top-level component types a Components V2 message may hold (action row, section, text, gallery, file, separator, container). */
const V2_TOP_LEVEL = new Set([1, 9, 10, 12, 13, 14, 17]);

function countComponents(components: readonly Record<string, unknown>[]): number {
  let total = 0;
  for (const component of components) {
    total += 1;
    if (Array.isArray(component.components))
      total += countComponents(component.components as Record<string, unknown>[]);
    if (component.accessory) total += 1;
  }
  return total;
}

/**
 * What Discord refuses in a message create or edit, as far as components go: a V2 message (flag 1<<15,
 * which cannot be removed) takes no content or embeds, at most 40 components, media galleries of 1–10
 * items that each name an attachment of the message; a message without the flag takes action rows only.
 */
function componentsProblem(
  message: StandinMessage,
  payload: Record<string, unknown>,
  files: readonly UploadedFile[],
): string | undefined {
  const flags = typeof payload.flags === 'number' ? payload.flags : message.flags;
  if (message.flags & IS_COMPONENTS_V2 && !(flags & IS_COMPONENTS_V2))
    return 'the IS_COMPONENTS_V2 flag cannot be removed';
  const components = (Array.isArray(payload.components) ? payload.components : message.components) as Record<
    string,
    unknown
  >[];
  if (!(flags & IS_COMPONENTS_V2)) {
    return components.some((component) => component.type !== 1)
      ? 'components other than action rows need the IS_COMPONENTS_V2 flag'
      : undefined;
  }
  const content = typeof payload.content === 'string' ? payload.content : message.content;
  const embeds = Array.isArray(payload.embeds) ? payload.embeds : message.embeds;
  if (content || embeds.length > 0) return 'a message with IS_COMPONENTS_V2 cannot have content or embeds';
  if (countComponents(components) > 40) return 'a message holds at most 40 components';
  const names = new Set([
    ...files.map((file) => file.filename),
    ...(Array.isArray(payload.attachments)
      ? []
      : message.attachments.map((attachment) => attachment.filename)),
  ]);
  for (const component of components) {
    if (!V2_TOP_LEVEL.has(Number(component.type)))
      return `component type ${String(component.type)} is not allowed at the top`;
    if (component.type === 10 && (typeof component.content !== 'string' || !component.content))
      return 'a text display needs content';
    if (component.type === 12) {
      const items = (component.items ?? []) as { media?: { url?: string }; description?: string }[];
      if (items.length < 1 || items.length > 10) return 'a media gallery holds 1 to 10 items';
      for (const item of items) {
        const url = item.media?.url ?? '';
        if (url.startsWith('attachment://') && !names.has(url.slice('attachment://'.length)))
          return `${url} names no attachment of the message`;
        if (item.description !== undefined && item.description.length > 1024)
          return 'a media item description is at most 1024 characters';
      }
    }
  }
  return undefined;
}

const API_PREFIX = '/api/v10';
const DEFAULT_SIZE_LIMIT = 10 * 1024 * 1024;
const GATEWAY_PATH = '/gateway';
const CDN_PATH = '/cdn/attachments/';
const DISCORD_EPOCH = 1_420_070_400_000n;

/** Starts a Discord stand-in on 127.0.0.1: REST (JSON and multipart) and the WebSocket gateway. */
export async function startDiscordStandin(options: StandinOptions): Promise<DiscordStandin> {
  let counter = 0n;
  const snowflake = (): string =>
    (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (counter++ & 0x3fffffn)).toString();
  const applicationId = options.applicationId ?? snowflake();
  const botUser = {
    id: applicationId,
    username: 'sdxl-bot',
    discriminator: '0',
    global_name: null,
    bot: true,
    avatar: null,
  };
  const guilds = options.guilds ?? [{ id: snowflake(), channels: [snowflake()] }];
  let sizeLimit = options.attachmentSizeLimit ?? DEFAULT_SIZE_LIMIT;
  const ackDeadlineMs = options.ackDeadlineMs ?? 3_000;
  const limits = options.rateLimits
    ? new DiscordRateLimits(options.rateLimits === true ? {} : options.rateLimits)
    : undefined;
  const tokenLifetimeMs = options.tokenLifetimeMs ?? 15 * 60_000;
  const messages: StandinMessage[] = [];
  const interactions = new Map<string, InteractionRecord>();
  const expiredTokens = new Set<string>();
  /** Direct-message channels the bot opened, by user id. */
  const dmChannels = new Map<string, string>();
  const byToken = new Map<string, InteractionRecord>();
  const rest: RestRecord[] = [];
  const commands = new Map<string, Record<string, unknown>[]>();
  const cdn: CdnRecord[] = [];
  const uploads = new Map<string, Required<StandinUpload> & { id: string }>();
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  /** A gateway connection and the shard it identified as (`[0, 1]` when it gave none). */
  interface Session {
    socket: WebSocket;
    sequence: number;
    ready: boolean;
    shard: [number, number];
  }
  const sessions = new Set<Session>();
  /** Whether a session receives this guild's events, as Discord routes them to shards. */
  const receives = (session: Session, guildId: string) =>
    shardOf(guildId, session.shard[1]) === session.shard[0];
  const changed = () => changes.emit('change');
  let dispatched = 0;

  const server = createServer((request, response) => {
    handleRest(request, response).catch((error: unknown) => {
      send(response, 500, { code: 0, message: String(error) });
    });
  });
  const gateway = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    if (!request.url?.startsWith(GATEWAY_PATH)) return socket.destroy();
    gateway.handleUpgrade(request, socket, head, (ws) => openSession(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;

  function openSession(socket: WebSocket): void {
    const session: Session = { socket, sequence: 0, ready: false, shard: [0, 1] };
    sessions.add(session);
    const dispatch = (event: string, data: unknown) =>
      socket.send(JSON.stringify({ op: 0, t: event, s: ++session.sequence, d: data }));
    socket.on('message', (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: { token?: string; shard?: unknown } };
      if (payload.op === 1) socket.send(JSON.stringify({ op: 11 }));
      if (payload.op === 2) {
        if (payload.d.token !== options.token && payload.d.token !== `Bot ${options.token}`) {
          socket.close(4004, 'Authentication failed.');
          return;
        }
        const shard = payload.d.shard ?? [0, 1];
        const valid =
          Array.isArray(shard) &&
          shard.length === 2 &&
          shard.every((part) => Number.isInteger(part)) &&
          shard[1] >= 1 &&
          shard[0] >= 0 &&
          shard[0] < shard[1];
        if (!valid) {
          socket.close(4010, 'Invalid shard.');
          return;
        }
        session.shard = shard as [number, number];
        const own = guilds.filter((guild) => receives(session, guild.id));
        dispatch('READY', {
          v: 10,
          user: botUser,
          guilds: own.map((guild) => ({ id: guild.id, unavailable: true })),
          session_id: snowflake(),
          resume_gateway_url: `ws://127.0.0.1:${port}${GATEWAY_PATH}`,
          application: { id: applicationId, flags: 0 },
          shard: session.shard,
        });
        for (const guild of own) dispatch('GUILD_CREATE', guildPayload(guild));
        session.ready = true;
        changed();
      }
      // A resume is answered as a fresh start: the stand-in keeps no session state.
      if (payload.op === 6) socket.send(JSON.stringify({ op: 9, d: false }));
    });
    socket.on('close', () => sessions.delete(session));
    socket.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 } }));
  }

  function guildPayload(guild: StandinGuild) {
    return {
      id: guild.id,
      name: guild.name ?? `guild ${guild.id}`,
      icon: null,
      owner_id: '1',
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      nsfw_level: 0,
      premium_tier: 0,
      preferred_locale: 'en-US',
      features: [],
      emojis: [],
      stickers: [],
      roles: [guild.id, ...(guild.roles ?? [])].map((id, position) =>
        roleObject(id, position, id === guild.id ? '@everyone' : undefined),
      ),
      channels: guild.channels.map((id, position) => ({
        id,
        type: 0,
        guild_id: guild.id,
        name: `channel-${id}`,
        position,
        permission_overwrites: [],
      })),
      members: [],
      presences: [],
      voice_states: [],
      threads: [],
      member_count: 1,
      large: false,
      unavailable: false,
      joined_at: new Date().toISOString(),
    };
  }

  function dispatchInteraction(
    type: number,
    actor: Actor,
    data: Record<string, unknown>,
    source?: StandinMessage,
  ) {
    const guildId = actor.guildId ?? guilds[0]!.id;
    const channelId =
      actor.channelId ?? guilds.find((guild) => guild.id === guildId)?.channels[0] ?? snowflake();
    const record: InteractionRecord = {
      id: snowflake(),
      // Random like Discord's: a token with a long digit run would share one REST bucket in discord.js.
      token: randomBytes(48).toString('base64url'),
      type,
      actor: { userId: actor.userId, guildId, channelId },
      dispatchedAt: Date.now(),
      callbacks: [],
      followupIds: [],
      ...(source && { sourceMessageId: source.id }),
      deliveredTo: 0,
      refusedCallbacks: 0,
    };
    interactions.set(record.id, record);
    byToken.set(record.token, record);
    const user = {
      id: actor.userId,
      username: actor.username ?? `user${actor.userId}`,
      discriminator: '0',
      global_name: null,
      avatar: null,
    };
    const payload = {
      id: record.id,
      application_id: applicationId,
      type,
      data,
      guild_id: guildId,
      channel_id: channelId,
      channel: { id: channelId, type: 0, guild_id: guildId, name: `channel-${channelId}` },
      member: {
        user,
        roles: actor.roles ?? [],
        joined_at: new Date().toISOString(),
        permissions: actor.permissions ?? '0',
        deaf: false,
        mute: false,
        flags: 0,
        pending: false,
      },
      token: record.token,
      version: 1,
      app_permissions: '2147485696',
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': guildId },
      context: 0,
      attachment_size_limit: sizeLimit,
      ...(source && { message: toApiMessage(source, botUser, applicationId) }),
    };
    // Only the shard the guild belongs to receives it, as on Discord. Several processes logged in as
    // the same shard (copies of an unsharded bot): every one of them, as Discord does, or one in turn.
    const ready = [...sessions].filter((candidate) => candidate.ready && receives(candidate, guildId));
    if (ready.length === 0)
      throw new Error(`no bot is connected to the stand-in gateway for guild ${guildId}'s shard`);
    // Every session in turn goes first: Discord's order varies, and a fixed one lets the same copy win
    // every claim, so a test could not count on each copy answering some.
    const first = dispatched++ % ready.length;
    const receivers =
      options.interactionDelivery === 'every-session'
        ? [...ready.slice(first), ...ready.slice(0, first)]
        : [ready[first]!];
    for (const session of receivers) {
      session.socket.send(
        JSON.stringify({ op: 0, t: 'INTERACTION_CREATE', s: ++session.sequence, d: payload }),
      );
    }
    record.deliveredTo = receivers.length;
    return record;
  }

  function isRef(value: unknown): value is AttachmentRef {
    return typeof value === 'object' && value !== null && 'attachmentId' in value;
  }

  /** A role as Discord describes it, in a guild or in an interaction's `resolved`. */
  function roleObject(id: string, position: number, name = `role ${id}`) {
    return {
      id,
      name,
      color: 0,
      hoist: false,
      position,
      permissions: '0',
      managed: false,
      mentionable: false,
      flags: 0,
    };
  }

  function isRole(value: unknown): value is RoleRef {
    return typeof value === 'object' && value !== null && 'roleId' in value;
  }

  function commandOptions(values: Record<string, OptionValue>, focused?: string) {
    return Object.entries(values).map(([name, value]) => ({
      name,
      type: isRef(value)
        ? 11
        : isRole(value)
          ? 8
          : typeof value === 'boolean'
            ? 5
            : typeof value === 'number'
              ? Number.isInteger(value)
                ? 4
                : 10
              : 3,
      value: isRef(value) ? value.attachmentId : isRole(value) ? value.roleId : value,
      ...(name === focused && { focused: true }),
    }));
  }

  /** `resolved.attachments` for the uploads among the values, as Discord sends them with the interaction. */
  function resolvedAttachments(refs: readonly AttachmentRef[]) {
    if (refs.length === 0) return undefined;
    const attachments: Record<string, unknown> = {};
    for (const ref of refs) {
      const file = uploads.get(ref.attachmentId)!;
      attachments[file.id] = {
        id: file.id,
        filename: file.filename,
        size: file.size,
        content_type: file.contentType,
        url: ref.url,
        proxy_url: ref.url,
        ephemeral: true,
      };
    }
    return { attachments };
  }

  function serveCdn(request: IncomingMessage, response: ServerResponse, path: string): void {
    cdn.push({ path, headers: { ...request.headers } });
    const file = uploads.get(path.slice(CDN_PATH.length).split('/')[0] ?? '');
    if (!file || request.method !== 'GET') {
      send(response, 404, { message: 'Not Found' });
    } else {
      response
        .writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length })
        .end(file.bytes);
    }
    changed();
  }

  function newMessage(channelId: string, interactionToken?: string): StandinMessage {
    const message: StandinMessage = {
      id: snowflake(),
      channelId,
      ...(interactionToken && { interactionToken }),
      content: '',
      embeds: [],
      components: [],
      attachments: [],
      flags: 0,
      ephemeral: false,
      loading: false,
      deleted: false,
      pings: [],
      history: [],
      createdAt: Date.now(),
    };
    messages.push(message);
    return message;
  }

  async function readBody(
    request: IncomingMessage,
  ): Promise<{ payload: Record<string, unknown>; files: UploadedFile[]; multipart: boolean }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = request.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request(origin, {
        method: 'POST',
        headers: { 'content-type': type },
        body: raw,
      }).formData();
      const files: UploadedFile[] = [];
      let payload: Record<string, unknown> = {};
      for (const [name, value] of form) {
        if (name === 'payload_json' && typeof value === 'string')
          payload = JSON.parse(value) as Record<string, unknown>;
        const match = /^files\[(\d+)\]$/.exec(name);
        if (match && typeof value !== 'string') {
          files.push({
            index: Number(match[1]),
            filename: value.name,
            contentType: value.type,
            bytes: Buffer.from(await value.arrayBuffer()),
          });
        }
      }
      return { payload, files, multipart: true };
    }
    const text = raw.toString('utf8');
    return {
      payload: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      files: [],
      multipart: false,
    };
  }

  function send(response: ServerResponse, status: number, body?: unknown): void {
    if (response.headersSent) return;
    if (body === undefined) {
      response.writeHead(status).end();
      return;
    }
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  async function handleRest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin);
    // The CDN: no authorization at all, as Discord's attachment URLs need none.
    if (url.pathname.startsWith(CDN_PATH)) return serveCdn(request, response, url.pathname);
    const path = url.pathname.startsWith(API_PREFIX) ? url.pathname.slice(API_PREFIX.length) : url.pathname;
    const method = request.method ?? 'GET';
    const { payload, files, multipart } = await readBody(request);
    const log: RestRecord = {
      method,
      path: path.replace(/(interactions\/\d+|webhooks\/\d+)\/[\w-]{40,}/, '$1/:token'),
      multipart,
      status: 0,
    };
    rest.push(log);
    const reply = (status: number, body?: unknown) => {
      log.status = status;
      send(response, status, body);
      changed();
    };
    /**
     * A message create (`target` makes the message, once the payload passed) or edit, written as Discord
     * would, or refused as Discord does, with nothing created or changed.
     */
    const write = (target: StandinMessage | (() => StandinMessage)) => {
      const refused = componentsProblem(typeof target === 'function' ? BLANK : target, payload, files);
      if (refused) return reply(400, { code: 50035, message: `Invalid Form Body (${refused})` });
      const message = typeof target === 'function' ? target() : target;
      applyPayload(message, payload, files, snowflake);
      return reply(200, toApiMessage(message, botUser, applicationId));
    };
    const parts = path
      .split('/')
      .filter(Boolean)
      .map((part) => decodeURIComponent(part));
    const authorized = request.headers.authorization === `Bot ${options.token}`;
    if (limits) {
      const channelId = parts[0] === 'webhooks' ? byToken.get(parts[2] ?? '')?.actor.channelId : undefined;
      const verdict = limits.take({ method, parts, bot: authorized, applicationId, channelId });
      for (const [name, value] of Object.entries(verdict.headers)) response.setHeader(name, value);
      if (verdict.limited) return reply(429, verdict.body);
    }
    const tooLarge = files.find((file) => file.bytes.length > sizeLimit);
    if (tooLarge) return reply(413, { code: 40005, message: 'Request entity too large' });

    // Interaction callbacks and webhooks authenticate with the interaction token, not the bot token.
    if (parts[0] === 'interactions' && parts[3] === 'callback' && method === 'POST') {
      const record = interactions.get(parts[1]!);
      if (!record || record.token !== parts[2])
        return reply(404, { code: 10062, message: 'Unknown interaction' });
      if (Date.now() - record.dispatchedAt > ackDeadlineMs) {
        // What users see as "The application did not respond".
        record.missedAck = true;
        return reply(404, { code: 10062, message: 'Unknown interaction' });
      }
      if (record.callbacks.length > 0) {
        record.refusedCallbacks++;
        return reply(400, { code: 40060, message: 'Interaction has already been acknowledged.' });
      }
      const type = Number(payload.type);
      const data = payload.data as Record<string, unknown> | undefined;
      if (type === 8) {
        // Discord refuses the whole answer when a choice breaks its limits; the user sees no suggestions.
        const choices = (data?.choices ?? []) as { name?: unknown; value?: unknown }[];
        const tooLong = (text: unknown) => typeof text === 'string' && (text.length < 1 || text.length > 100);
        if (choices.length > 25 || choices.some((choice) => tooLong(choice.name) || tooLong(choice.value))) {
          return reply(400, {
            code: 50035,
            message: 'Invalid Form Body',
            errors: {
              data: {
                choices: {
                  _errors: [
                    { code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' },
                  ],
                },
              },
            },
          });
        }
      }
      if (type === 9) {
        const problem = modalProblem(data ?? {});
        if (problem) return reply(400, { code: 50035, message: `Invalid Form Body (${problem})` });
      }
      record.callbacks.push({ type, data, at: Date.now() });
      let message: StandinMessage | undefined;
      if (type === 4 || type === 5) {
        message = newMessage(record.actor.channelId, record.token);
        if (type === 5) message.loading = true;
        if (data && typeof data.flags === 'number' && data.flags & 64) message.ephemeral = true;
        if (type === 4) applyPayload(message, data ?? {}, files, snowflake);
        record.originalMessageId = message.id;
      }
      if ((type === 6 || type === 7) && record.sourceMessageId) {
        record.originalMessageId = record.sourceMessageId;
        message = messages.find((candidate) => candidate.id === record.sourceMessageId);
        if (type === 7 && message) applyPayload(message, data ?? {}, files, snowflake);
      }
      if (url.searchParams.get('with_response') === 'true') {
        return reply(200, {
          interaction: {
            id: record.id,
            type: record.type,
            activity_instance_id: null,
            response_message_id: message?.id ?? null,
            response_message_loading: type === 5,
            response_message_ephemeral: message?.ephemeral ?? false,
          },
          ...(message && { resource: { type, message: toApiMessage(message, botUser, applicationId) } }),
        });
      }
      return reply(204);
    }

    if (parts[0] === 'webhooks' && parts[1] === applicationId) {
      const record = byToken.get(parts[2] ?? '');
      if (!record) return reply(404, { code: 10015, message: 'Unknown Webhook' });
      if (expiredTokens.has(record.token) || Date.now() - record.dispatchedAt > tokenLifetimeMs) {
        return reply(401, { code: 50027, message: 'Invalid Webhook Token' });
      }
      if (parts.length === 3 && method === 'POST') {
        // Discord: the first follow-up after a deferred reply edits the "is thinking…" message.
        const loading = messages.find(
          (candidate) => candidate.id === record.originalMessageId && candidate.loading && !candidate.deleted,
        );
        if (loading) {
          return write(loading);
        }
        return write(() => {
          const message = newMessage(record.actor.channelId, record.token);
          record.followupIds.push(message.id);
          return message;
        });
      }
      if (parts[3] === 'messages' && parts[4]) {
        const id = parts[4] === '@original' ? record.originalMessageId : parts[4];
        const message = messages.find((candidate) => candidate.id === id && !candidate.deleted);
        if (!message) return reply(404, { code: 10008, message: 'Unknown Message' });
        if (method === 'GET') return reply(200, toApiMessage(message, botUser, applicationId));
        if (method === 'PATCH') return write(message);
        if (method === 'DELETE') {
          message.deleted = true;
          return reply(204);
        }
      }
    }

    if (!authorized) return reply(401, { code: 0, message: '401: Unauthorized' });
    if (method === 'GET' && path === '/gateway/bot') {
      return reply(200, {
        url: `ws://127.0.0.1:${port}${GATEWAY_PATH}`,
        shards: options.shards ?? 1,
        session_start_limit: {
          total: 1000,
          remaining: 1000,
          reset_after: 0,
          max_concurrency: options.maxConcurrency ?? 1,
        },
      });
    }
    if (method === 'GET' && path === '/users/@me') return reply(200, botUser);
    if (method === 'POST' && path === '/users/@me/channels') {
      const userId = String(payload.recipient_id);
      const id = dmChannels.get(userId) ?? snowflake();
      dmChannels.set(userId, id);
      const recipient = {
        id: userId,
        username: `user${userId}`,
        discriminator: '0',
        global_name: null,
        avatar: null,
      };
      return reply(200, { id, type: 1, recipients: [recipient], last_message_id: null });
    }
    if (method === 'GET' && parts[0] === 'users' && parts[1] && parts.length === 2) {
      return reply(200, {
        id: parts[1],
        username: `user${parts[1]}`,
        discriminator: '0',
        global_name: null,
        avatar: null,
      });
    }
    if (method === 'GET' && path === '/applications/@me')
      return reply(200, { id: applicationId, name: 'sdxl-bot', flags: 0, bot: botUser });
    if (parts[0] === 'applications' && parts[1] === applicationId && method === 'PUT') {
      const scope = parts[2] === 'guilds' ? parts[3]! : 'global';
      const body = (Array.isArray(payload) ? payload : []) as Record<string, unknown>[];
      const registered = body.map((command) => ({
        ...command,
        id: snowflake(),
        application_id: applicationId,
        version: snowflake(),
      }));
      commands.set(scope, registered);
      return reply(200, registered);
    }
    if (parts[0] === 'channels' && parts[1]) {
      const channelId = parts[1];
      if (method === 'GET' && parts.length === 2) {
        const guild = guilds.find((candidate) => candidate.channels.includes(channelId));
        if (!guild) return reply(404, { code: 10003, message: 'Unknown Channel' });
        return reply(200, {
          id: channelId,
          type: 0,
          guild_id: guild.id,
          name: `channel-${channelId}`,
          position: 0,
          permission_overwrites: [],
        });
      }
      if (method === 'POST' && parts[2] === 'messages' && parts.length === 3) {
        return write(() => newMessage(channelId));
      }
      if (method === 'PATCH' && parts[2] === 'messages' && parts[3]) {
        // The bot's own messages, interaction replies included; Discord does not find ephemeral ones here.
        const message = messages.find(
          (candidate) => candidate.id === parts[3] && candidate.channelId === channelId && !candidate.deleted,
        );
        if (!message || message.ephemeral) return reply(404, { code: 10008, message: 'Unknown Message' });
        return write(message);
      }
    }
    return reply(404, { code: 0, message: `404: Not Found (stand-in has no ${method} ${path})` });
  }

  const standin: DiscordStandin = {
    apiUrl: `${origin}/api`,
    port,
    applicationId,
    botUserId: botUser.id,
    messages,
    interactions,
    rest,
    cdn,
    commands,
    rateLimits: limits,
    async waitForGateway(timeoutMs, count = 1) {
      await standin.waitFor(
        () => [...sessions].filter((session) => session.ready).length >= count,
        `${count} bot connection${count === 1 ? '' : 's'} on the gateway`,
        timeoutMs,
      );
    },
    get gatewaySessions() {
      return [...sessions].filter((session) => session.ready).length;
    },
    get gatewayShards() {
      return [...sessions].filter((session) => session.ready).map((session) => session.shard);
    },
    upload(file) {
      const id = snowflake();
      uploads.set(id, {
        id,
        filename: file.filename,
        bytes: file.bytes,
        contentType: file.contentType ?? 'image/png',
        size: file.size ?? file.bytes.length,
      });
      return { attachmentId: id, url: `${origin}${CDN_PATH}${id}/${encodeURIComponent(file.filename)}` };
    },
    slash(actor, name, values = {}, subcommand) {
      const options = subcommand
        ? [{ name: subcommand, type: 1, options: commandOptions(values) }]
        : commandOptions(values);
      const attachments = resolvedAttachments(Object.values(values).filter(isRef));
      const roles = Object.values(values)
        .filter(isRole)
        .map(({ roleId }) => [roleId, roleObject(roleId, 1)] as const);
      const resolved = {
        ...attachments,
        ...(roles.length > 0 && { roles: Object.fromEntries(roles) }),
      };
      return dispatchInteraction(2, actor, {
        id: snowflake(),
        name,
        type: 1,
        options,
        ...(Object.keys(resolved).length > 0 && { resolved }),
      });
    },
    async autocomplete(actor, name, focused, values = {}) {
      const record = dispatchInteraction(4, actor, {
        id: snowflake(),
        name,
        type: 1,
        options: commandOptions({ [focused]: '', ...values }, focused),
      });
      const callback = await standin.waitFor(() => record.callbacks[0], 'autocomplete choices');
      return (callback.data?.choices ?? []) as { name: string; value: string | number }[];
    },
    clickButton(actor, message, customId) {
      return dispatchInteraction(3, actor, { custom_id: customId, component_type: 2 }, message);
    },
    dmChannelOf: (userId) => dmChannels.get(userId),
    expireToken(interaction) {
      expiredTokens.add(interaction.token);
    },
    setAttachmentSizeLimit(bytes) {
      sizeLimit = bytes;
    },
    submitModal(actor, customId, fields, source) {
      const shown = [...interactions.values()]
        .flatMap((record) => record.callbacks)
        .filter((callback) => callback.type === 9 && callback.data?.custom_id === customId)
        .at(-1);
      const answer = (id: string, type: number) => {
        const value = fields[id];
        return type === 19
          ? {
              type: 19,
              custom_id: id,
              values: (Array.isArray(value) ? value : []).map((ref) => ref.attachmentId),
            }
          : { type: 4, custom_id: id, value: typeof value === 'string' ? value : '' };
      };
      type Shown = { type: number; custom_id?: string; component?: Shown; components?: Shown[] };
      // Discord answers every field of the modal it showed, in its layout (a field left empty comes back
      // empty), and a field inside a Label comes back inside one.
      const components = shown
        ? ((shown.data?.components ?? []) as Shown[])
            .filter((component) => component.type !== 10)
            .map((component) =>
              component.type === 18
                ? { type: 18, component: answer(component.component!.custom_id!, component.component!.type) }
                : {
                    type: 1,
                    components: (component.components ?? []).map((field) =>
                      answer(field.custom_id!, field.type),
                    ),
                  },
            )
        : Object.entries(fields).map(([id, value]) =>
            typeof value === 'string'
              ? { type: 1, components: [answer(id, 4)] }
              : { type: 18, component: answer(id, 19) },
          );
      const resolved = resolvedAttachments(
        Object.values(fields).flatMap((value) => (typeof value === 'string' ? [] : value)),
      );
      return dispatchInteraction(
        5,
        actor,
        { custom_id: customId, components, ...(resolved && { resolved }) },
        source,
      );
    },
    message: (id) => messages.find((candidate) => candidate.id === id),
    original: (record) => messages.find((candidate) => candidate.id === record.originalMessageId),
    waitFor(predicate, what, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const value = predicate();
          if (!value) return false;
          changes.off('change', check);
          clearTimeout(timer);
          resolve(value);
          return true;
        };
        const timer = setTimeout(() => {
          changes.off('change', check);
          reject(new Error(`stand-in: timed out waiting for ${what}`));
        }, timeoutMs);
        if (!check()) changes.on('change', check);
      });
    },
    async close() {
      for (const session of sessions) session.socket.terminate();
      gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standin;
}
