// Examples printed under every command's --help, keyed by the command's path. EXAMPLES, of the commands a newcomer
// and a daily user type most, each run as written against the README's iris example (examples/iris) once it is pushed.
import type { Command } from 'commander';

export const EXAMPLES: Record<string, string[]> = {
  '': [
    'atelier module push examples/iris/train     publish a module from its folder',
    'atelier workflow create examples/iris/workflow.yaml',
    'atelier run start iris --param epochs=200 --watch',
    'atelier run list --status failed',
  ],
  'module push': [
    'atelier module push examples/iris/train',
    'atelier module push examples/iris/train --run iris --watch   then run the workflow with this version',
    'atelier module push examples/iris/train --tag candidate',
  ],
  'module run': ['atelier module run examples/iris/prepare --param seed=7 --param testFraction=0.2'],
  'module tag': [
    'atelier module tag examples/iris-train latest 1 --reason "eval ok"',
    'atelier module tag examples/iris-train latest latestAlpha   promote what latestAlpha points at',
  ],
  'workflow create': ['atelier workflow create examples/iris/workflow.yaml     a new version when the spec changed'],
  'run start': [
    'atelier run start iris --watch',
    'atelier run start iris --param epochs=500 --param learningRate=0.1 --watch --logs',
    'atelier run start iris --version 1 -q     print only the new run id',
  ],
  'run list': [
    'atelier run list --workflow iris --status failed',
    'atelier run list --filter "metrics.accuracy > 0.9" --order-by "metrics.accuracy DESC" -n 5',
  ],
  'run get': ['atelier run get RUN_ID'],
  'run logs': ['atelier run logs RUN_ID --node evaluate', 'atelier run logs RUN_ID -f             follow until the run ends'],
  'run rerun': ['atelier run rerun RUN_ID --watch     execute again what failed, reuse the rest', 'atelier run rerun RUN_ID --from nodes --node train'],
  'run clone': ['atelier run clone RUN_ID --param epochs=1000 --watch'],
  'run search': ['atelier run search "params.learningRate < 0.5 and metrics.accuracy > 0.9" --order "metrics.accuracy DESC"'],
  'schedule create': ['atelier schedule create iris --cron "0 6 * * *" --tz Europe/Paris --param epochs=500'],
};

/**
 * Examples of every other command, with the names a reader replaces in capitals (RUN_ID, TASK_ID…): each parses as
 * written (test/cli/examples.test.ts), but most need things of one's own (a team, a model, an alert) to run.
 */
export const REFERENCE_EXAMPLES: Record<string, string[]> = {
  start: ['PORT=4000 ATELIER_DATA_DIR=./atelier-data atelier start'],
  executor: ['NATS_URL=nats://127.0.0.1:4222 atelier executor --pool local --concurrency 4', 'atelier executor --pool gpu --gpus 2'],
  'executor list': ['atelier executor list'],
  'executor new': ['atelier executor new slurm     then: npx vitest run executors/slurm/slurm.test.ts'],
  'deployer new': ['atelier deployer new knative --dir ./plugins/deployers'],
  'module list': ['atelier module list --namespace examples', 'atelier module list --search iris'],
  'module show': ['atelier module show examples/iris-train', 'atelier module show examples/iris-train --json'],
  'module rollback': ['atelier module rollback examples/iris-train latest --reason "accuracy regressed"'],
  'module deprecate': [
    'atelier module deprecate examples/iris-train@1 --reason "leaks the test split"',
    'atelier module deprecate examples/iris-train@1 --undo',
  ],
  'team create': ['atelier team create vision --description "image models"'],
  'team add': ['atelier team add vision alice --role maintainer'],
  'team remove': ['atelier team remove vision alice'],
  'team list': ['atelier team list'],
  'team grant': ['atelier team grant vision production     its members may then work in production'],
  'team revoke': ['atelier team revoke vision production'],
  'namespace create': ['atelier namespace create vision --team vision'],
  'user create': ['atelier user create alice --role member --expires-in-days 90     prints her token once'],
  'service-account create': ['TOKEN=$(atelier service-account create ci --role member --scopes publish:Module,start:Run --owner alice)'],
  'service-account token': ['atelier service-account token ci --scopes read:Run --expires-in-days 30'],
  'service-account revoke': ['atelier service-account revoke ci     its tokens stop working at once'],
  'token revoke': ['atelier token revoke "$LEAKED_TOKEN"     that one token only; the identity’s others stay live'],
  'workflow list': ['atelier workflow list'],
  'run watch': ['atelier run watch RUN_ID', 'atelier run watch RUN_ID --logs --plain'],
  'run cancel': ['atelier run cancel RUN_ID'],
  'run compare': ['atelier run compare RUN_ID OTHER_RUN_ID --metric accuracy', 'atelier run compare RUN_ID OTHER_RUN_ID --all-params --json'],
  'run tag': ['atelier run tag RUN_ID dataset=v2 owner=alice', 'atelier run tag RUN_ID --delete owner'],
  'run note': ['atelier run note RUN_ID "baseline for the v2 split"', 'atelier run note RUN_ID ""     clear it'],
  'trigger create': [
    'atelier trigger create iris on-new-flowers --on dataset-version --source examples/flowers',
    'atelier trigger create iris from-ci --on http --map epochs=/epochs --param seed=7     prints its secret once',
  ],
  'trigger list': ['atelier trigger list iris'],
  'trigger show': ['atelier trigger show on-new-flowers -n 20'],
  'trigger update': ['atelier trigger update from-ci --map epochs=/epochs --map seed=/seed --max-runs-per-minute 10'],
  'trigger rotate': ['atelier trigger rotate from-ci     prints the new secret once; the old one stops working'],
  'trigger pause': ['atelier trigger pause on-new-flowers'],
  'trigger resume': ['atelier trigger resume on-new-flowers'],
  'trigger delete': ['atelier trigger delete on-new-flowers'],
  'trigger fire': ['atelier trigger fire from-ci --data \'{"epochs": 300}\' --delivery build-1234'],
  'experiment list': ['atelier experiment list --deleted -n 50'],
  'experiment rename': ['atelier experiment rename iris iris-2026'],
  'experiment delete': ['atelier experiment delete iris-2026     its runs are kept'],
  'experiment restore': ['atelier experiment restore iris-2026'],
  'experiment tag': ['atelier experiment tag iris goal=recall', 'atelier experiment tag iris --delete goal'],
  'schedule list': ['atelier schedule list iris --next 5'],
  'schedule show': ['atelier schedule show SCHEDULE_ID -n 20'],
  'schedule update': [
    'atelier schedule update SCHEDULE_ID --cron "0 7 * * 1-5" --tz Europe/Paris',
    'atelier schedule update SCHEDULE_ID --param epochs=800 --end none     replaces its parameters; no end',
    'atelier schedule update SCHEDULE_ID --fire-time-param day     each fire sets run parameter day to its time',
  ],
  'schedule backfill': ['atelier schedule backfill SCHEDULE_ID --from 2026-11-01T00:00:00Z --to 2026-11-30T23:59:59Z'],
  'schedule pause': ['atelier schedule pause SCHEDULE_ID'],
  'schedule resume': ['atelier schedule resume SCHEDULE_ID'],
  'schedule delete': ['atelier schedule delete SCHEDULE_ID'],
  'webhook create': ['atelier webhook create vision https://hooks.example.com/atelier --event "run.*" --event alert.opened'],
  'webhook list': ['atelier webhook list vision'],
  'webhook update': ['atelier webhook update WEBHOOK_ID --event run.failed --inactive'],
  'webhook rotate': ['atelier webhook rotate WEBHOOK_ID --keep-previous 24'],
  'webhook delete': ['atelier webhook delete WEBHOOK_ID'],
  'webhook deliveries': ['atelier webhook deliveries WEBHOOK_ID --status failed -n 20'],
  'webhook replay': ['atelier webhook replay DELIVERY_ID'],
  'monitor create': [
    'atelier monitor create latency model:examples/iris@champion serving.latency_ms --rule \'{"kind":"THRESHOLD","above":100,"consecutive":2}\' --every 60',
  ],
  'monitor list': ['atelier monitor list model:examples/iris@champion'],
  'monitor show': ['atelier monitor show MONITOR_ID -n 20'],
  'monitor update': [
    'atelier monitor update MONITOR_ID --rule \'{"id":"slow","kind":"THRESHOLD","above":150,"consecutive":3}\' --reason "new SLO"',
    'atelier monitor update MONITOR_ID --every 300',
  ],
  'monitor pause': ['atelier monitor pause MONITOR_ID --reason "maintenance window"'],
  'monitor resume': ['atelier monitor resume MONITOR_ID'],
  'monitor delete': ['atelier monitor delete MONITOR_ID --reason "model retired"'],
  'alert list': ['atelier alert list', 'atelier alert list --all -n 50'],
  'alert show': ['atelier alert show ALERT_ID'],
  'alert ack': ['atelier alert ack ALERT_ID --reason "looking into it"'],
  'alert resolve': ['atelier alert resolve ALERT_ID --reason "rolled back to version 3"'],
  'alert false-positive': ['atelier alert false-positive ALERT_ID --reason "load test traffic"'],
  'alert annotate': ['atelier alert annotate ALERT_ID --reason "region failover" --from 2026-01-01T10:00:00Z --to 2026-01-01T11:00:00Z'],
  'alert rebaseline': ['atelier alert rebaseline ALERT_ID --reason "new traffic mix is the norm"'],
  observe: ['atelier observe model:examples/iris@champion serving.latency_ms 42 --dim region=eu'],
  'cache stats': ['atelier cache stats --since 30d --by workflow'],
  'cache explain': ['atelier cache explain RUN_ID train', 'atelier cache explain TASK_ID'],
  'cache preview': ['atelier cache preview iris --param epochs=500'],
  'cache invalidate': ['atelier cache invalidate --module examples/iris-train@1', 'atelier cache invalidate --key CACHE_KEY'],
  costs: ['atelier costs --since 30d --by workflow'],
  'cluster create': ['atelier cluster create warm-cpu --executor local --workers 4 --idle-timeout 3600'],
  'cluster list': ['atelier cluster list --all'],
  'cluster end': ['atelier cluster end warm-cpu'],
  'dataset list': ['atelier dataset list --domain production', 'atelier dataset list --catalog --json'],
  'dataset show': ['atelier dataset show crm/users'],
  'dataset create': [
    'atelier dataset create crm/users --domain adhoc --column id:int:PUBLIC --column email:string:CONFIDENTIAL:PII --digest sha256:HEX --sample users.json',
    'atelier dataset create ml/flowers --domain experimentation --column petal:float:PUBLIC --digest sha256:HEX --partition day=1@sha256:HEX1@500 --partition day=2@sha256:HEX2',
  ],
  'dataset version': ['atelier dataset version crm/users --column id:int --column email:string --column country:string:INTERNAL --digest sha256:HEX'],
  'dataset freshness': ['atelier dataset freshness crm/users --every 1d --policy wait --max-wait 2h', 'atelier dataset freshness crm/users     no expectation'],
  'dataset label': [
    'atelier dataset label crm/users country INTERNAL --reason "reviewed"',
    'atelier dataset label crm/users email CONFIDENTIAL --categories PII',
  ],
  'dataset preview': ['atelier dataset preview crm/users --where country=FR --order-by id:desc -n 10', 'atelier dataset preview crm/users --group-by country'],
  'dataset publish': ['atelier dataset publish crm/users'],
  'dataset withdraw': ['atelier dataset withdraw crm/users --reason "schema change pending"'],
  'declassify request': ['atelier declassify request crm/users country PUBLIC --reason "country codes only"'],
  'declassify list': ['atelier declassify list --all'],
  'declassify approve': ['atelier declassify approve REQUEST_ID'],
  'declassify reject': ['atelier declassify reject REQUEST_ID'],
  audit: ['atelier audit --subject dataset:crm/users.email --since 2d', 'atelier audit -n 100 --json'],
  'model list': ['atelier model list --namespace examples'],
  'model show': ['atelier model show examples/iris'],
  'model save': [
    'atelier model save examples/iris --description "iris species classifier"',
    'atelier model save examples/iris --require "accuracy>=0.9" --require "loss<=0.3"   bounds a promotion checks',
    'atelier model save examples/iris --clear-requirements',
  ],
  'model register': [
    'atelier model register examples/iris TASK_ID model --flavor sklearn',
    'atelier model register examples/iris TASK_ID model --metadata \'{"framework": "none"}\'',
  ],
  'model alias': ['atelier model alias examples/iris champion 2 --reason "best accuracy"'],
  'model rollback': ['atelier model rollback examples/iris champion --reason "regressed in production"'],
  'model deprecate': ['atelier model deprecate examples/iris@1 --reason "trained on a leaked split"'],
  'model promote': ['atelier model promote examples/iris@2 champion --reason "beat version 1 on the holdout"'],
  'model approve': ['atelier model approve PROMOTION_ID --reason "reviewed the lineage"'],
  'model reject': ['atelier model reject PROMOTION_ID --reason "needs a fairness check"'],
  'model lineage': ['atelier model lineage examples/iris@champion'],
  'deploy create': [
    'atelier deploy create iris-api examples/iris@champion',
    'atelier deploy create iris-api examples/iris@champion --steps 10:60,50:120,100 --gate "serving.error_rate>0.01" --on-no-data hold',
  ],
  'deploy list': ['atelier deploy list --model examples/iris'],
  'deploy show': ['atelier deploy show iris-api'],
  'deploy promote': ['atelier deploy promote iris-api --reason "canary looks healthy"'],
  'deploy rollback': ['atelier deploy rollback iris-api --reason "error rate up"'],
  'deploy failover': ['atelier deploy failover iris-api --reason "new revision is down"'],
  'deploy restore': ['atelier deploy restore iris-api'],
  'deploy delete': ['atelier deploy delete iris-api'],
};

/** Each command's examples, and for a group of commands the first example of each of its commands. */
export function examplesOf(command: Command, path: string): string[] {
  const own = [...(EXAMPLES[path] ?? []), ...(REFERENCE_EXAMPLES[path] ?? [])];
  if (own.length || !command.commands.length) return own;
  return command.commands.flatMap((sub) => examplesOf(sub, `${path} ${sub.name()}`.trim()).slice(0, 1));
}

/**
 * Adds each command's examples under its --help; throws when an example names a command that is not there (checked
 * on the `complete` program: one built for a command line has only the command it names).
 */
export function addExamples(program: Command, { complete = true } = {}): void {
  for (const path of complete ? [...Object.keys(EXAMPLES), ...Object.keys(REFERENCE_EXAMPLES)] : []) {
    let command: Command | undefined = program;
    for (const name of path.split(' ').filter(Boolean)) command = command?.commands.find((c) => c.name() === name);
    if (!command) throw new Error(`examples for "atelier ${path}", which is no command`);
  }
  const add = (command: Command, path: string) => {
    const lines = examplesOf(command, path);
    if (lines.length) command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}`);
    for (const sub of command.commands) add(sub, `${path} ${sub.name()}`.trim());
  };
  add(program, '');
}
