import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  SlashCommandBuilder,
  SlashCommandSubcommandsOnlyBuilder,
} from 'discord.js';
import type { BotContext } from '../context.ts';
import * as imagine from './imagine.ts';
import * as quota from './quota.ts';
import * as sdxlAdmin from './sdxl-admin.ts';
import * as settings from './settings.ts';

/** A slash command, one file each, as the discord.js guide lays them out. */
export interface Command {
  data: SlashCommandBuilder | SlashCommandSubcommandsOnlyBuilder;
  execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, context: BotContext): Promise<void>;
}

export const COMMANDS: ReadonlyMap<string, Command> = new Map<string, Command>(
  [imagine, settings, quota, sdxlAdmin].map((command) => [command.data.name, command]),
);
