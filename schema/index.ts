// The GraphQL schema: imports every type file, then builds.
import { builder } from './builder';
import './types/scalars';
import './types/enums';
import './types/identity';
import './types/teams';
import './types/modules';
import './types/workflows';
import './types/runs';
import './types/tasks';
import './types/metrics';
import './types/run-queries';
import './types/run-mutations';
import './types/external-runs';
import './types/run-events';
import './types/experiments';
import './types/run-search';
import './types/schedules';
import './types/datasets';
import './types/catalog';
import './types/models';
import './types/model-mutations';
import './types/cache';
import './types/executors';
import './types/webhooks';
import './types/node';
import './types/viewer-can';

export const schema = builder.toSchema({ sortSchema: true });
