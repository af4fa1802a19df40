// Credit budgets in the bot: per server per day and month, per member per day, per role; held when a job
// is accepted, settled at what the sandbox billed, let go when nothing was. Through the real discord.js
// client against the Discord stand-in, with the sandbox over HTTP behind it, embedded and on Redis.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Actor, InteractionRecord, OptionValue } from '../../bot/test-support/discord-standin/server.ts';
import { loadConfig } from '../../bot/src/config.ts';
import { BOT_MODES } from './implementations.ts';
import {
  ADMIN_CHANNEL,
  ARTIST_ROLE,
  GUILD,
  CHANNEL,
  alice,
  bob,
  buttonIds,
  buttonLabels,
  manager,
  startWorld,
  type World,
} from './world.ts';

const carol: Actor = { userId: '800000000000000005', username: 'carol', roles: [ARTIST_ROLE] };

const sum = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) * 1e6) / 1e6;

/** The sandbox's billed credits, to the micro-credit. */
const billed = (world: World) => sum(world.sandbox.billed.map((call) => call.cost));

/** A slash command's private answer (its text once it has one). */
async function privately(world: World, record: InteractionRecord): Promise<string> {
  const reply = await world.privateReply(record);
  assert.equal(reply.ephemeral, true, 'only the member sees it');
  return reply.content;
}

const quota = (world: World, actor: Actor) =>
  privately(world, world.standin.slash({ guildId: GUILD, channelId: CHANNEL, ...actor }, 'quota'));

const budgetAdmin = (world: World, values: Record<string, OptionValue> = {}) =>
  privately(
    world,
    world.standin.slash({ guildId: GUILD, channelId: CHANNEL, ...manager }, 'sdxl-admin', values, 'budget'),
  );

/** The refusal a member got for a job no budget had room for: private, and nothing public left behind. */
async function refused(world: World, record: InteractionRecord): Promise<string> {
  const text = await privately(world, record);
  const shown = [record.originalMessageId, ...record.followupIds]
    .map((id) => id && world.standin.message(id))
    .filter((message) => message && !message.deleted && !message.ephemeral);
  assert.deepEqual(shown, [], 'no public message for a refused job');
  return text;
}

/** The spent figure of a budget line as the bot shows it (`**Label**: 0.016 of 0.02 credits spent`). */
function spentOf(text: string, label: RegExp): number {
  const line = text.split('\n').find((candidate) => label.test(candidate));
  assert.ok(line, `a line for ${label} in:\n${text}`);
  return Number(/\*\*: ([\d.]+) of/.exec(line)![1]);
}

const notices = (world: World, pattern: RegExp) =>
  world.standin.messages.filter(
    (message) => message.channelId === ADMIN_CHANNEL && pattern.test(message.content),
  );

for (const mode of BOT_MODES) {
  describe(`credit budgets, ${mode.name}`, { skip: mode.skip }, () => {
    it('refuses privately, naming the budget, what is spent and when it resets; spends what the sandbox billed; changed at run time; kept across a restart', async () => {
      const world = await startWorld({
        ...(await mode.env()),
        BOT_BUDGET_MEMBER_DAY: '0.016',
        BOT_BUDGET_SERVER_DAY: '0.1',
        BOT_BUDGET_ROLES: `${ARTIST_ROLE}:0.024`,
      });
      try {
        const first = await world.result(world.imagine(alice, { prompt: 'a kettle' }));
        await world.result(world.imagine(alice, { prompt: 'a kettle, again' }));
        const third = await refused(world, world.imagine(alice, { prompt: 'a kettle, once more' }));
        assert.match(
          third,
          /^💰 This job \(about 0\.008 credits\) does not fit your daily budget: 0\.016 of 0\.016 credits spent\. It resets <t:\d+:R>\. Nothing was queued or billed\.$/,
        );
        const midnight = Date.UTC(
          new Date().getUTCFullYear(),
          new Date().getUTCMonth(),
          new Date().getUTCDate() + 1,
        );
        assert.equal(Number(/<t:(\d+):R>/.exec(third)![1]), midnight / 1000, 'the next UTC midnight');
        // Buttons make jobs too, each held at its own model's price: refused alike, nothing billed.
        for (const [label, price] of [
          ['Upscale 2x', '0.0047'],
          ['Vary (Subtle)', '0.0195'],
          ['New seed', '0.008'],
        ] as const) {
          const id = buttonIds(first)[buttonLabels(first).indexOf(label)]!;
          assert.match(
            await refused(world, world.standin.clickButton(alice, first, id)),
            new RegExp(
              `^💰 This job \\(about ${price.replace('.', '\\.')} credits\\) does not fit your daily budget`,
            ),
            label,
          );
        }
        assert.equal(world.sandbox.billed.length, 2, 'the refused jobs were not billed');

        // A role's budget replaces the member's: carol makes a third image where alice could not.
        for (const take of [1, 2, 3])
          await world.result(world.imagine(carol, { prompt: `a teapot ${take}` }));
        assert.match(
          await refused(world, world.imagine(carol, { prompt: 'a teapot 4' })),
          new RegExp(`does not fit your daily budget \\(as <@&${ARTIST_ROLE}>\\): 0\\.024 of 0\\.024`),
        );
        // Raised for the role at run time; a role's budget without the role is refused, naming the option.
        assert.match(await budgetAdmin(world, { role_day: 0.032 }), /`role_day`: 0\.032 needs a `role`/);
        const roles = await budgetAdmin(world, { role: { roleId: ARTIST_ROLE }, role_day: 0.032 });
        assert.match(roles, new RegExp(`<@&${ARTIST_ROLE}> 0\\.032 \\(set here\\)`));
        await world.result(world.imagine(carol, { prompt: 'a teapot 4' }));

        const seen = await quota(world, alice);
        assert.equal(spentOf(seen, /Your daily budget/), 0.016);
        assert.match(
          seen,
          /\*\*Your daily budget\*\*: 0\.016 of 0\.016 credits spent, 0 left \(about 0 images\); resets <t:\d+:R>/,
        );
        assert.equal(
          spentOf(seen, /This server’s daily budget/),
          billed(world),
          "the server's spend is what the sandbox billed",
        );

        // At run time: the server's daily budget down to what is spent plus a little.
        const set = await budgetAdmin(world, { server_day: 0.049 });
        assert.match(set, /Credits this server may spend per UTC day: 0\.049 \(set here\)/);
        assert.match(set, /Credits each member may spend per UTC day: 0\.016 \(\.env\)/);
        assert.equal(spentOf(set, /This server’s daily budget/), billed(world));
        const serverFull = await refused(world, world.imagine(bob, { prompt: 'a saucer' }));
        assert.match(
          serverFull,
          /does not fit this server’s daily budget: 0\.048 of 0\.049 credits spent\. It resets <t:\d+:R>/,
        );
        await world.standin.waitFor(
          () => notices(world, /used up/)[0],
          'the admin channel told the budget is full',
        );
        assert.match(
          notices(world, /used up/)[0]!.content,
          new RegExp(`Server \`${GUILD}\`: this server’s daily budget of 0\\.049 credits is used up`),
        );

        await world.restart();
        assert.match(
          await refused(world, world.imagine(bob, { prompt: 'a saucer' })),
          /0\.048 of 0\.049 credits spent/,
          'the day’s spend and the run-time budget survive a restart',
        );
        assert.equal(spentOf(await quota(world, bob), /This server’s daily budget/), billed(world));
        assert.match(await budgetAdmin(world, { clear: 'serverDay' }), /per UTC day: 0\.1 \(\.env\)/);
        await world.result(world.imagine(bob, { prompt: 'a saucer' }));
        assert.equal(world.sandbox.billed.length, 7);
        assert.equal(notices(world, /used up/).length, 1, 'one notice for the window');
      } finally {
        await world.close();
      }
    });

    it('holds the buttons under an upscale at their own model’s price too, and refuses them privately once spent', async () => {
      // An image (0.008) and its 2x upscale (esrgan, 0.0047) spend the member's day exactly.
      const world = await startWorld({ ...(await mode.env()), BOT_BUDGET_MEMBER_DAY: '0.0127' });
      try {
        const first = await world.result(world.imagine(alice, { prompt: 'a kettle' }));
        const click = (message: typeof first, label: string) =>
          world.standin.clickButton(
            alice,
            message,
            buttonIds(message)[buttonLabels(message).indexOf(label)]!,
          );
        const doubled = await world.result(click(first, 'Upscale 2x'));
        assert.match(doubled.content, /Upscaled 2x/);
        for (const [label, price] of [
          ['Upscale 2x', '0.0047'],
          ['Vary (Subtle)', '0.0195'],
          ['Vary (Strong)', '0.0195'],
        ] as const) {
          assert.match(
            await refused(world, click(doubled, label)),
            new RegExp(
              `^💰 This job \\(about ${price.replace('.', '\\.')} credits\\) does not fit your daily budget: 0\\.0127 of 0\\.0127 credits spent\\.`,
            ),
            label,
          );
        }
        assert.deepEqual(
          world.sandbox.billed.map((call) => call.slug),
          ['sdxl1.0-txt2img', 'esrgan'],
          'the refused jobs were not billed',
        );
        assert.equal(spentOf(await quota(world, alice), /Your daily budget/), billed(world));
      } finally {
        await world.close();
      }
    });

    it('holds a job in line, and lets it go on cancel or when the API bills nothing', async () => {
      // One image at a time, each 1.2 s at the image service: the second job waits in line, held.
      const world = await startWorld(
        { ...(await mode.env()), BOT_MAX_IN_FLIGHT: '1', BOT_BUDGET_MEMBER_DAY: '0.016' },
        { latencyMs: 1200 },
      );
      try {
        const running = world.imagine(alice, { prompt: 'first' });
        const waiting = world.imagine(alice, { prompt: 'second' });
        const queued = await world.standin.waitFor(() => {
          const message = world.standin.original(waiting);
          return message && /queued/.test(message.content) ? message : undefined;
        }, 'the second job in line');
        const full = await refused(world, world.imagine(alice, { prompt: 'third' }));
        assert.match(
          full,
          /does not fit your daily budget: 0 of 0\.016 credits spent, 0\.01596 held by jobs in flight/,
        );

        world.standin.clickButton(alice, queued, buttonIds(queued)[0]!);
        await world.standin.waitFor(
          () => /cancelled/.test(world.standin.original(waiting)?.content ?? ''),
          'the cancel',
        );
        await world.result(running);
        const fourth = world.imagine(alice, { prompt: 'fourth' });
        await world.result(fourth);
        assert.deepEqual(
          world.sandbox.billed.map((call) => call.prompt),
          ['first', 'fourth'],
        );
        assert.equal(spentOf(await quota(world, alice), /Your daily budget/), billed(world));

        // Accepted by the API, then FAILED: not billed, so bob's hold goes and his budget is whole.
        world.sandbox.configure({ failJobs: [true], latencyMs: 0 });
        const failed = world.imagine(bob, { prompt: 'fails at the API' });
        await world.standin.waitFor(
          () => /accepted the job, then it failed/.test(world.standin.original(failed)?.content ?? ''),
          'the failure',
        );
        const bobs = await quota(world, bob);
        assert.match(bobs, /\*\*Your daily budget\*\*: 0 of 0\.016 credits spent, 0\.016 left/);
      } finally {
        await world.close();
      }
    });
  });
}

describe('budget configuration', () => {
  const base = { DISCORD_TOKEN: 'token', SDXL_BASE_URL: 'http://127.0.0.1:8787/v1' };
  it('reads the budgets from the environment, and names a malformed one before the bot starts', () => {
    const config = loadConfig({
      ...base,
      BOT_BUDGET_SERVER_DAY: '2',
      BOT_BUDGET_SERVER_MONTH: '30',
      BOT_BUDGET_MEMBER_DAY: '0.1',
      BOT_BUDGET_ROLES: `${ARTIST_ROLE}:0.5, 900000000000000021:1`,
    });
    assert.deepEqual(config.budgets, {
      serverDay: 2,
      serverMonth: 30,
      memberDay: 0.1,
      roles: { [ARTIST_ROLE]: 0.5, '900000000000000021': 1 },
    });
    assert.deepEqual(loadConfig(base).budgets.roles, {});
    assert.equal(loadConfig(base).budgets.serverDay, undefined, 'no budget unless one is set');
    assert.throws(
      () => loadConfig({ ...base, BOT_BUDGET_SERVER_DAY: 'lots' }),
      /^ConfigError: BOT_BUDGET_SERVER_DAY: "lots" is not allowed; allowed: a number of credits, 0 or more/,
    );
    assert.throws(
      () => loadConfig({ ...base, BOT_BUDGET_MEMBER_DAY: '-1' }),
      /BOT_BUDGET_MEMBER_DAY: "-1" is not allowed/,
    );
    assert.throws(
      () => loadConfig({ ...base, BOT_BUDGET_ROLES: 'artists:0.5' }),
      /BOT_BUDGET_ROLES: "artists:0.5" is not allowed; allowed: roleId:credits pairs/,
    );
  });
});
