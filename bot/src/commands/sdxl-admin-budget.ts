import { formatCredits } from '@sdxl-kit/client';
import type { ChatInputCommandInteraction, SlashCommandSubcommandBuilder } from 'discord.js';
import { describeUsage } from '../budget/describe.ts';
import {
  BUDGET_KEYS,
  BUDGET_NAMES,
  changeServerBudgets,
  serverBudgets,
  type BudgetKey,
} from '../budget/settings.ts';
import type { BotContext } from '../context.ts';
import { BotRefusal } from '../errors.ts';

const ROLE = 'role';
const ROLE_DAY = 'role_day';
const CLEAR = 'clear';

const DESCRIPTIONS: Readonly<Record<BudgetKey, string>> = {
  serverDay: 'Credits this server may spend per UTC day',
  serverMonth: 'Credits this server may spend per UTC month',
  memberDay: 'Credits each member may spend per UTC day',
};

/** `/sdxl-admin budget`: shows this server's credit budgets, or changes them. */
export function budgetSubcommand(sub: SlashCommandSubcommandBuilder): SlashCommandSubcommandBuilder {
  sub.setName('budget').setDescription('This server\u2019s credit budgets: see them, or change them');
  for (const key of BUDGET_KEYS)
    sub.addNumberOption((o) =>
      o.setName(BUDGET_NAMES[key].option).setDescription(DESCRIPTIONS[key]).setMinValue(0),
    );
  return sub
    .addRoleOption((o) => o.setName(ROLE).setDescription('A role whose members get their own daily budget'))
    .addNumberOption((o) =>
      o.setName(ROLE_DAY).setDescription('Credits per UTC day for each member with that role').setMinValue(0),
    )
    .addStringOption((o) =>
      o
        .setName(CLEAR)
        .setDescription('Go back to the .env budget (for role: the role given)')
        .addChoices(
          ...BUDGET_KEYS.map((key) => ({ name: BUDGET_NAMES[key].option, value: key })),
          { name: ROLE, value: ROLE },
          { name: 'all', value: 'all' },
        ),
    );
}

/**
 * Changes this server's budgets as asked (each replaces `.env`'s for this server, kept in the job
 * store, so every process and the next start keep to it), then shows them and where they stand.
 * @throws {BotRefusal} naming the option when a role and its budget do not come together.
 */
export async function budgetAdmin(
  interaction: ChatInputCommandInteraction,
  context: BotContext,
): Promise<string> {
  const { store, config, budgets } = context;
  const guildId = interaction.guildId!;
  const options = interaction.options;
  const role = options.getRole(ROLE);
  const roleDay = options.getNumber(ROLE_DAY);
  const clear = options.getString(CLEAR);
  const refuse = (text: string) => new BotRefusal('invalid_option', `\u26a0\ufe0f ${text}`);
  if (roleDay !== null && !role) throw refuse(`\`${ROLE_DAY}\`: ${roleDay} needs a \`${ROLE}\` to apply to.`);
  if (clear === ROLE && !role)
    throw refuse(`\`${CLEAR}\`: ${ROLE} needs the \`${ROLE}\` to go back to .env's.`);
  if (role && roleDay === null && clear !== ROLE)
    throw refuse(
      `\`${ROLE}\`: <@&${role.id}> needs \`${ROLE_DAY}\` (its members' credits per day), or \`${CLEAR}:${ROLE}\`.`,
    );
  const set: Partial<Record<BudgetKey, number>> = {};
  for (const key of BUDGET_KEYS) {
    const value = options.getNumber(BUDGET_NAMES[key].option);
    if (value !== null) set[key] = value;
  }
  const changing = clear !== null || roleDay !== null || Object.keys(set).length > 0;
  if (changing) {
    await changeServerBudgets(store, guildId, {
      set,
      ...(role && roleDay !== null && { setRole: [role.id, roleDay] as [string, number] }),
      ...(clear !== null && { clear: clear === ROLE ? role!.id : clear }),
    });
    context.logger.info({ guildId, by: interaction.user.id, set, clear }, 'budgets changed');
  }
  const { settings, setHere } = await serverBudgets(store, config.budgets, guildId);
  const from = (key: string) => (setHere.has(key) ? 'set here' : '.env');
  const lines = [`**${changing ? 'Saved. ' : ''}Credit budgets of this server** (UTC days and months)`];
  for (const key of BUDGET_KEYS) {
    const value = settings[key];
    lines.push(
      `${DESCRIPTIONS[key]}: ${value === undefined ? 'none' : `${formatCredits(value)} (${from(key)})`}`,
    );
  }
  const roles = Object.entries(settings.roles);
  lines.push(
    `Role budgets per member per day: ${roles.length ? roles.map(([id, credits]) => `<@&${id}> ${formatCredits(credits)} (${from(id)})`).join(', ') : 'none'}`,
  );
  const image = budgets.estimate(undefined, 1);
  // The server's own standing: a member's budget is seen with /quota.
  const standing = await budgets.standing({ guildId, userId: interaction.user.id, roles: [] });
  for (const usage of standing.filter((usage) => usage.limit.id.startsWith('guild:')))
    lines.push(`- ${describeUsage(usage, image)}`);
  return lines.join('\n');
}
