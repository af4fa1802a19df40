/**
 * Imported first by main.ts, before sharp and discord.js are evaluated. glibc gives every thread that
 * allocates its own malloc arena, and keeps what an arena freed for reuse by that arena; sharp's libvips
 * threads compose every grid, so a long-running bot held freed image memory in many arenas and its
 * peak grew with the jobs it had served (1.14–1.23x from 100 to 1,000 jobs; 1.01x with two arenas).
 * glibc reads MALLOC_ARENA_MAX only when a process starts, so on Linux the bot replaces itself once
 * (`process.execve`: same pid, same stdio, no parent left behind) with it set. An operator's own value,
 * including an empty one, is respected; musl (Alpine) ignores the variable, which costs one exec.
 *
 * Not when the process was forked with an IPC channel (a discord.js ShardingManager's shard, pm2's fork
 * mode): Node takes NODE_CHANNEL_FD out of the environment once it has opened the channel, and the
 * channel does not survive the exec (tried: the new process has no `process.send`, or one that fails
 * with EINVAL), so the shard would never tell its manager it is ready. The launcher (shards.ts) sets the
 * variable for its children instead.
 */
if (
  process.platform === 'linux' &&
  process.env.MALLOC_ARENA_MAX === undefined &&
  process.execve &&
  !process.channel
) {
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    ...process.env,
    MALLOC_ARENA_MAX: '2',
  });
}

export {};
