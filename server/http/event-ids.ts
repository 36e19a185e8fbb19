// Live events carry their run's event number to the client whatever it selected: as `extensions.seq` on each
// subscription result (graphql-ws and SSE alike), and over SSE as the message's `id:`, which an EventSource sends
// back as `Last-Event-ID` when it reconnects, so `runEvents` resumes exactly where the client left off.
import { getSSEProcessor, isAsyncIterable, type Plugin } from 'graphql-yoga';
import { notedSeq } from '../../schema/live-access';

export function useEventIds(): Plugin {
  return {
    onSubscribe({ args }) {
      const ctx = args.contextValue as object;
      return {
        onSubscribeResult: () => ({
          onNext({ result, setResult }) {
            const seq = notedSeq(ctx);
            // A shared result (server/http/shared-results.ts) carries its event's number already: left as it is.
            if (seq !== undefined && result.extensions?.seq !== seq) setResult({ ...result, extensions: { ...result.extensions, seq } });
          },
        }),
      };
    },
    // Runs after yoga's own choice: an SSE stream is yoga's, with an `id:` line added to each message that has a seq.
    onResultProcess({ request, result, setResultProcessor }) {
      if (!isAsyncIterable(result) || !(request.headers.get('accept') ?? '').includes('text/event-stream')) return;
      const sse = getSSEProcessor();
      setResultProcessor(async (input, fetchAPI) => {
        const response = await sse(input, fetchAPI, 'text/event-stream');
        if (!response.body) return response;
        return new fetchAPI.Response(response.body.pipeThrough(withEventIds()), { status: response.status, headers: response.headers });
      }, 'text/event-stream');
    },
  };
}

/** Adds `id: <seq>` to each complete `event: next` message whose data has `extensions.seq`; passes the rest as is. */
function withEventIds(): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = '';
  return new TransformStream({
    transform(chunk, controller) {
      pending += decoder.decode(chunk, { stream: true });
      let end = pending.indexOf('\n\n');
      while (end >= 0) {
        const message = pending.slice(0, end + 2);
        pending = pending.slice(end + 2);
        controller.enqueue(encoder.encode(idOf(message) + message));
        end = pending.indexOf('\n\n');
      }
    },
    flush(controller) {
      if (pending) controller.enqueue(encoder.encode(pending));
    },
  });
}

function idOf(message: string): string {
  if (!message.startsWith('event: next\n')) return '';
  const data = message.slice('event: next\n'.length).match(/^data: (.*)\n\n$/s)?.[1];
  if (!data) return '';
  try {
    const seq = (JSON.parse(data) as { extensions?: { seq?: unknown } }).extensions?.seq;
    return typeof seq === 'number' ? `id: ${seq}\n` : '';
  } catch {
    return '';
  }
}
