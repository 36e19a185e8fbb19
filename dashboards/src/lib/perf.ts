// Performance marks the browser tests read (and anyone can in the devtools' Performance panel):
//   atelier:response:<Operation>  when a GraphQL response's headers arrive
//   atelier:runs:first-page       measure: from the runs query's response to its first page painted
// and, on `window.atelierPerf.status`, each live status change the run page showed: its server timestamp, when it
// arrived in the page and when the DOM showed it (all epoch ms, so they compare with other processes' clocks).

export interface StatusSample {
  /** `node:STATUS:attempt`, or `run:STATUS` */
  key: string;
  at: number;
  received: number;
  rendered: number | null;
}

export interface PerfSamples {
  status: StatusSample[];
}

declare global {
  interface Window {
    atelierPerf?: PerfSamples;
  }
}

export const perf: PerfSamples = (window.atelierPerf = { status: [] });

/** A fetch that marks when each operation's response arrives. */
export const markingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const name = typeof init?.body === 'string' ? /"operationName":"(\w+)"/.exec(init.body)?.[1] : undefined;
  if (name) performance.mark(`atelier:response:${name}`);
  return response;
};

/** Runs `fn` after the next paint (a frame, then a task). */
export function afterPaint(fn: () => void) {
  requestAnimationFrame(() => setTimeout(fn, 0));
}

/** Measures from the latest `atelier:response:<operation>` mark to after the next paint, once. */
export function measureFromResponse(operation: string, measure: string) {
  const marks = performance.getEntriesByName(`atelier:response:${operation}`, 'mark');
  const start = marks.at(-1)?.startTime;
  if (start === undefined) return;
  afterPaint(() => {
    if (performance.getEntriesByName(measure, 'measure').length) return;
    performance.measure(measure, { start, end: performance.now() });
  });
}
