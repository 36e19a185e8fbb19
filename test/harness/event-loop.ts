// Whether work ran off the event loop: the loop's turns while it was pending.

/** Counts event-loop turns while `work` is pending: zero when it ran synchronously on the loop. */
export async function turnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns += 1;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work;
  done = true;
  return turns;
}
