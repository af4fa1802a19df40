import { Options, type CacheFactory, type Interaction } from 'discord.js';

/**
 * The caches the bot's Discord client keeps. The bot reads nothing back from them: every interaction
 * carries its user, member and message, and a job's result lives in the job store. So it keeps no
 * messages (discord.js keeps 200 per channel by default, each with its embeds and buttons) and no
 * users or members but itself (by default every user who ever typed a command stays until restart).
 */
export function botCaches(): CacheFactory {
  return Options.cacheWithLimits({
    ...Options.DefaultMakeCacheSettings,
    MessageManager: 0,
    UserManager: { maxSize: 0, keepOverLimit: (user) => user.id === user.client.user?.id },
    GuildMemberManager: { maxSize: 0, keepOverLimit: (member) => member.id === member.client.user?.id },
  });
}

/**
 * Idle rate-limit handlers of a finished interaction are swept this often (discord.js: hourly). An
 * interaction token is dead after 15 minutes, so its handler is of no use after that.
 */
export const HANDLER_SWEEP_MS = 15 * 60_000;

/**
 * Drops discord.js's rate-limit handlers for one interaction's token once they are idle. Its REST
 * client keys webhook routes by token, so every interaction the bot answers with an edit, follow-up
 * or delete gets a handler of its own, swept only when idle at the next sweep: without this, every
 * job of the last sweep interval would keep one. Returns how many were dropped.
 */
export function releaseInteraction(interaction: Interaction): number {
  if (!('token' in interaction) || !interaction.token) return 0;
  const { handlers } = interaction.client.rest;
  const suffix = `:${interaction.applicationId}/${interaction.token}`;
  let released = 0;
  for (const [key, handler] of handlers) {
    if (key.endsWith(suffix) && handler.inactive) {
      handlers.delete(key);
      released++;
    }
  }
  return released;
}
