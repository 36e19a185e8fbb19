// What the TASKS stream holds: since when (a store lost with nats-server's starts again), and which attempts' messages
// it holds still. The sweep asks both to find queued tasks whose message no host can ever pull (server/orchestrator/lost-messages.ts).
import type { JetStreamManager, SeqMsgRequest } from '@nats-io/jetstream';
import type { Bus } from '../../plugins/bus/types';
import { isTaskBatch, type TaskBatch, type TaskMessage, taskMessageId } from '../../plugins/protocol';
import { streamMissing } from './jetstream-streams';

export interface TaskStoreWire {
  jsm: JetStreamManager;
  stream: string;
  /** Every task subject (`<root>.tasks.>`). */
  subjects: string;
  keeper: { restore(): Promise<void> };
  assertOpen(): void;
}

/** STREAM.MSG.GET's "the first message at or after `seq` on this subject" (nats-server 2.9), which the client's types leave out. */
type NextMsgRequest = SeqMsgRequest & { next_by_subj: string };

export function taskStoreMethods({ jsm, stream, subjects, keeper, assertOpen }: TaskStoreWire): Pick<Bus, 'taskStoreSince' | 'heldTaskMessages'> {
  /** The stream's info; a stream that is not there (nats-server came back without its store) is made now, empty. */
  const info = () =>
    jsm.streams.info(stream).catch(async (err: unknown) => {
      if (!streamMissing(err)) throw err;
      await keeper.restore();
      return jsm.streams.info(stream);
    });

  return {
    async taskStoreSince() {
      assertOpen();
      // Every task message published before a stream made now is gone either way; the answer is when it was made.
      return new Date((await info()).created);
    },

    async heldTaskMessages(wanted) {
      assertOpen();
      const held = new Set<string>();
      const { state } = await info();
      // Oldest first, one message a request, up to what the stream held when asked (messages published since are
      // none of those wanted: each was published before the caller asked); done as soon as every wanted one is found.
      for (let seq = state.first_seq; seq <= state.last_seq && held.size < wanted.size; ) {
        const query: NextMsgRequest = { seq, next_by_subj: subjects };
        const message = await jsm.streams.getMessage(stream, query);
        if (!message || message.seq > state.last_seq) break;
        seq = message.seq + 1;
        let payload: TaskMessage | TaskBatch;
        try {
          payload = message.json<TaskMessage | TaskBatch>();
        } catch {
          continue; // not a task message of ours: holds none
        }
        for (const task of isTaskBatch(payload) ? payload.tasks : [payload]) {
          const key = taskMessageId(task.taskId, task.attempt);
          if (wanted.has(key)) held.add(key);
        }
      }
      return held;
    },
  };
}
