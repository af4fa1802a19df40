import { PermissionFlagsBits, type BaseInteraction } from 'discord.js';
import type { BotConfig } from './config.ts';
import { BotRefusal } from './errors.ts';

type AccessConfig = Pick<
  BotConfig,
  'allowedGuilds' | 'allowedChannels' | 'allowedRoles' | 'adminRoles' | 'bannedWords'
>;

/** Role ids of the member behind an interaction, whether discord.js cached the guild or not. */
export function memberRoleIds(interaction: BaseInteraction): string[] {
  const member = interaction.member;
  if (!member) return [];
  return Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
}

/** Refuses interactions from guilds, channels or roles the configuration does not allow. */
export function checkAccess(interaction: BaseInteraction, config: AccessConfig): void {
  if (config.allowedGuilds.length > 0 && !config.allowedGuilds.includes(interaction.guildId ?? '')) {
    throw new BotRefusal('not_allowed', '\ud83d\udeab This bot is not enabled in this server.');
  }
  if (config.allowedChannels.length > 0 && !config.allowedChannels.includes(interaction.channelId ?? '')) {
    const where = config.allowedChannels.map((id) => `<#${id}>`).join(', ');
    throw new BotRefusal('not_allowed', `\ud83d\udeab Images can be made in ${where} only.`);
  }
  if (config.allowedRoles.length > 0) {
    const roles = memberRoleIds(interaction);
    if (!config.allowedRoles.some((role) => roles.includes(role))) {
      const which = config.allowedRoles.map((id) => `<@&${id}>`).join(', ');
      throw new BotRefusal(
        'not_allowed',
        `\ud83d\udeab You need one of these roles to make images: ${which}.`,
      );
    }
  }
}

/** Refuses a prompt containing a banned word or phrase (whole words, any case). */
export function checkBannedWords(prompt: string, bannedWords: readonly string[]): void {
  const text = prompt.toLowerCase();
  for (const word of bannedWords) {
    const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(^|[^\\p{L}\\p{N}])${escaped}($|[^\\p{L}\\p{N}])`, 'u').test(text)) {
      throw new BotRefusal(
        'banned_word',
        `\ud83d\udeab The prompt contains a word this server does not allow: "${word}".`,
      );
    }
  }
}

/** Server managers, and members with a configured admin role. */
export function isBotAdmin(interaction: BaseInteraction, config: Pick<BotConfig, 'adminRoles'>): boolean {
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild)) return true;
  const roles = memberRoleIds(interaction);
  return config.adminRoles.some((role) => roles.includes(role));
}

/** Who may delete someone else's result: admins and members who can manage messages. */
export function isModerator(interaction: BaseInteraction, config: Pick<BotConfig, 'adminRoles'>): boolean {
  return (
    Boolean(interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages)) ||
    isBotAdmin(interaction, config)
  );
}
