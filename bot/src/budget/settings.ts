import type { JobStore } from '../store/job-store.ts';

/** Credit budgets, in credits per UTC day or month; a budget left out is no budget. */
export interface BudgetSettings {
  /** Credits a server may spend per UTC day. */
  serverDay?: number;
  /** Credits a server may spend per UTC month. */
  serverMonth?: number;
  /** Credits one member may spend per UTC day in a server. */
  memberDay?: number;
  /** Role id → a member's daily credits for members with that role (the largest of a member's roles wins). */
  roles: Readonly<Record<string, number>>;
}

/** The budgets that have one number each, in the order they are shown. */
export const BUDGET_KEYS = ['serverDay', 'serverMonth', 'memberDay'] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];

/** What `/sdxl-admin budget` names each budget, and the `.env` variable that sets it for every server. */
export const BUDGET_NAMES: Readonly<Record<BudgetKey, { option: string; variable: string }>> = {
  serverDay: { option: 'server_day', variable: 'BOT_BUDGET_SERVER_DAY' },
  serverMonth: { option: 'server_month', variable: 'BOT_BUDGET_SERVER_MONTH' },
  memberDay: { option: 'member_day', variable: 'BOT_BUDGET_MEMBER_DAY' },
};

/** A server's budgets in force and which of them `/sdxl-admin budget` set (the rest come from `.env`). */
export interface ServerBudgets {
  settings: BudgetSettings;
  /** Budget keys and role ids set for this server at run time. */
  setHere: ReadonlySet<string>;
}

const settingKey = (guildId: string) => `budget.server:${guildId}`;

/** What `/sdxl-admin budget` set for one server, as stored: each value replaces `.env`'s. */
type Overrides = Partial<Record<BudgetKey, number>> & { roles?: Record<string, number> };

async function overridesOf(store: JobStore, guildId: string): Promise<Overrides> {
  const raw = await store.getSetting(settingKey(guildId));
  return raw ? (JSON.parse(raw) as Overrides) : {};
}

/** The budgets in force for a server: `.env`'s, with what was set for it at run time on top. */
export async function serverBudgets(
  store: JobStore,
  defaults: BudgetSettings,
  guildId: string | null,
): Promise<ServerBudgets> {
  if (!guildId) return { settings: defaults, setHere: new Set() };
  const overrides = await overridesOf(store, guildId);
  const { roles = {}, ...numbers } = overrides;
  return {
    settings: { ...defaults, ...numbers, roles: { ...defaults.roles, ...roles } },
    setHere: new Set([...Object.keys(numbers), ...Object.keys(roles)]),
  };
}

/**
 * Changes a server's run-time budgets (kept in the job store, so every process and the next start
 * see them): `set` replaces, `clear` goes back to `.env`'s (a budget key, a role id, or 'all').
 */
export async function changeServerBudgets(
  store: JobStore,
  guildId: string,
  change: { set?: Partial<Record<BudgetKey, number>>; setRole?: [string, number]; clear?: string },
): Promise<void> {
  let overrides = await overridesOf(store, guildId);
  if (change.clear === 'all') overrides = {};
  else if (change.clear) {
    delete overrides[change.clear as BudgetKey];
    if (overrides.roles) delete overrides.roles[change.clear];
  }
  overrides = { ...overrides, ...change.set };
  if (change.setRole) overrides.roles = { ...overrides.roles, [change.setRole[0]]: change.setRole[1] };
  const empty = Object.keys(overrides).every(
    (key) => key === 'roles' && Object.keys(overrides.roles ?? {}).length === 0,
  );
  await store.setSetting(settingKey(guildId), empty ? undefined : JSON.stringify(overrides));
}
