import { connect } from './connect.ts';
import { EXIT } from './exit.ts';
import type { Interrupt } from './interrupt.ts';
import type { Io } from './io.ts';
import { parseFlags } from './options.ts';

export const CREDITS_HELP = `Usage: sdxl credits [--json] [--sandbox] [--base-url URL]

Prints the account's balance. Costs nothing, so it is also a quick check of SDXL_API_KEY.`;

export async function credits(argv: string[], io: Io, interrupt: Interrupt): Promise<number> {
  const { values } = parseFlags(argv, {
    json: { type: 'boolean' },
    sandbox: { type: 'boolean' },
    'base-url': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(`${CREDITS_HELP}\n`);
    return EXIT.ok;
  }
  const connection = await connect(io, values);
  try {
    const balance = await connection.client.getCredits({ signal: interrupt.stop });
    if (values.json) {
      io.stdout.write(`${JSON.stringify(balance)}\n`);
    } else {
      io.stdout.write(`${balance.total} credits (${balance.credits} paid, ${balance.freeCredits} free)\n`);
      if (balance.lowCredits) {
        io.stderr.write(
          `Warning: below the low-credit threshold of ${connection.client.lowCreditsThreshold}.\n`,
        );
      }
    }
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}
