import {
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type ChatInputCommandInteraction,
} from 'discord.js';
import { isBotAdmin } from '../access.ts';
import type { BotContext } from '../context.ts';
import { formatCredits } from '../credits.ts';
import { BotRefusal } from '../errors.ts';
import { budgetAdmin, budgetSubcommand } from './sdxl-admin-budget.ts';

export const data = new SlashCommandBuilder()
  .setName('sdxl-admin')
  .setDescription('SDXL bot administration: credits, budgets, queue and settings')
  // Server managers only by default; a server can grant it to other roles in its Integrations settings.
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
  .setContexts(InteractionContextType.Guild)
  .addSubcommand((sub) => sub.setName('credits').setDescription('The SDXL account balance'))
  .addSubcommand((sub) => sub.setName('queue').setDescription('Jobs running and waiting, and the limits'))
  .addSubcommand((sub) => sub.setName('settings').setDescription('The bot settings in force (no secrets)'))
  .addSubcommand(budgetSubcommand);

const dailyLimit = (images: number) => (images === 0 ? 'no daily limit' : `${images} images a day`);

const ids = (list: readonly string[], format: (id: string) => string) =>
  list.length ? list.map(format).join(', ') : 'any';

export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const { config, sdxl, queue, limiter } = context;
  // Discord hides the command from others by default, but a server may widen that: check again.
  if (!isBotAdmin(interaction, config)) {
    throw new BotRefusal(
      'not_allowed',
      '\ud83d\udeab /sdxl-admin is for server managers and the bot\u2019s admin roles.',
    );
  }
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const sub = interaction.options.getSubcommand();
  let content: string;
  if (sub === 'credits') {
    const balance = await sdxl.getCredits();
    await context.credits.balanceChecked(balance);
    content = [
      `**Credits:** ${formatCredits(balance.total)} (paid ${formatCredits(balance.credits)}, free ${formatCredits(balance.freeCredits)})`,
      `Warning when paid credits fall below ${formatCredits(config.lowCreditsThreshold)}${balance.credits < config.lowCreditsThreshold ? ' \u2014 \u26a0\ufe0f **low now**' : ''}.`,
    ].join('\n');
  } else if (sub === 'budget') {
    content = await budgetAdmin(interaction, context);
  } else if (sub === 'queue') {
    const stats = await queue.stats();
    content = [
      `**Queue:** ${stats.running} jobs running (${stats.runningImages} of at most ${stats.imageCapacity} images at once), ${stats.waiting} waiting.`,
      `Starts: ${await limiter.used()} of ${config.requestsPerMinute} in the current ${Math.round(config.rateWindowMs / 1000)} s window.`,
      `Per person: ${config.userQueueLimit} jobs in line, ${dailyLimit(config.userDailyImages)}.`,
    ].join('\n');
  } else {
    content = [
      '**Settings**',
      `Image service: ${config.sdxlBaseUrl ?? 'hosted SDXL API'}`,
      `Images at once: ${config.maxInFlight}; job starts per minute: ${config.requestsPerMinute}`,
      `Per person: ${config.userQueueLimit} in line, ${dailyLimit(config.userDailyImages)}`,
      `Servers: ${ids(config.allowedGuilds, (id) => `\`${id}\``)}; channels: ${ids(config.allowedChannels, (id) => `<#${id}>`)}; roles: ${ids(config.allowedRoles, (id) => `<@&${id}>`)}`,
      `Admin roles: ${ids(config.adminRoles, (id) => `<@&${id}>`)}; admin channel: ${config.adminChannelId ? `<#${config.adminChannelId}>` : 'none'}`,
      `Banned words: ${config.bannedWords.length}; spoilers: ${config.spoiler ? 'on' : 'off'}`,
      `Low-credit warning below ${formatCredits(config.lowCreditsThreshold)}; buttons work for ${config.jobTtlHours} h`,
    ].join('\n');
  }
  await interaction.editReply({ content, allowedMentions: { parse: [] } });
}
