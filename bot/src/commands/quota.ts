import {
  InteractionContextType,
  MessageFlags,
  SlashCommandBuilder,
  type ChatInputCommandInteraction,
} from 'discord.js';
import { memberRoleIds } from '../access.ts';
import { describeUsage } from '../budget/describe.ts';
import type { BotContext } from '../context.ts';

export const data = new SlashCommandBuilder()
  .setName('quota')
  .setDescription('What you can still spend on images here: your budget and this server\u2019s')
  .setContexts(InteractionContextType.Guild);

/** Shows the member, privately, where each credit budget that applies to them stands. */
export async function execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void> {
  const { budgets, config } = context;
  const standing = await budgets.standing({
    guildId: interaction.guildId,
    userId: interaction.user.id,
    roles: memberRoleIds(interaction),
  });
  const image = budgets.estimate(undefined, 1);
  const daily =
    config.userDailyImages === 0
      ? 'no daily image limit'
      : `at most ${config.userDailyImages} images a day per person`;
  const content = standing.length
    ? [
        '**What is left for you here** (credits; one image costs about ' + `${image ?? 'an unknown amount'})`,
        ...standing.map((usage) => `- ${describeUsage(usage, image)}`),
        `Besides: ${daily}.`,
      ].join('\n')
    : `No credit budget applies to you here; ${daily}.`;
  await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
}
