// The run page's operations.
import { graphql } from '../../graphql';

export const TaskFields = graphql(`
  fragment TaskFields on Task {
    id
    node
    kind
    status
    attempt
    maxAttempts
    dependsOn
    triggerRule
    condition
    moduleRef
    moduleVersion { id ref version parameterSchema }
    workflowRef
    childRun { id status }
    mapParent
    mapIndex
    progress
    progressMessage
    message
    reason
    exitCode
    queuedAt
    startedAt
    finishedAt
    durationMs
    retryAt
    executor
    pool
    host
    reusedFromTaskId
    cacheHit { savedMs sourceRun { id } sourceTask { id node } }
    waitingReason
    provisioningMs
    executionMs
    parameters
    outputs
    declaredDatasets { name digest sourceType context }
    attempts { attempt state reason message host startedAt finishedAt durationMs }
  }
`);

export const RUN = graphql(
  `
    query RunPage($id: ID!) {
      run(id: $id) {
        id
        status
        message
        trigger
        parameters
        createdAt
        startedAt
        finishedAt
        timeoutSeconds
        deadlineAt
        sourceRunId
        parentRunId
        domain
        workflow { id name domain }
        workflowVersion { id version spec }
        createdBy { name }
        schedule { id name }
        scheduleFire { fireTime backfill }
        viewerCan { cancel { allowed reason } clone { allowed reason } rerun { allowed reason } }
        childRuns { id status workflow { name } }
        tasks { ...TaskFields }
      }
    }
  `,
  [TaskFields],
);

export const TASK_LOGS = graphql(`
  query RunTaskLogs($id: ID!, $limit: Int) {
    run(id: $id) { id tasks { id node logs(limit: $limit) { stream line at } } }
  }
`);

export const RUN_METRIC_NAMES = graphql(`
  query RunMetricNames($id: ID!) {
    run(id: $id) { id metrics { taskId name } }
  }
`);

export const TASK_METRIC_HISTORY = graphql(`
  query TaskMetricHistory($taskId: ID!, $name: String!, $maxPoints: Int) {
    node(id: $taskId) { id ... on Task { metricHistory(name: $name, maxPoints: $maxPoints) { name points { seq step value } } } }
  }
`);

export const RUN_EVENTS = graphql(`
  subscription RunPageEvents($runId: ID!, $after: Int) {
    runEvents(runId: $runId, after: $after) {
      __typename
      ... on RunStatusEvent { at runStatus message deadlineAt }
      ... on TaskStatusEvent { at taskId node status attempt reason message }
      ... on TaskProgressEvent { at taskId node fraction message }
      ... on TaskLogEvent { at taskId node stream lines }
      ... on TaskMetricEvent { at taskId node metrics step points }
    }
  }
`);

export const CANCEL_RUN = graphql(`
  mutation CancelRun($id: ID!) { cancelRun(id: $id) { id status message finishedAt } }
`);

export const CLONE_RUN = graphql(`
  mutation CloneRun($id: ID!, $parameters: JSON) { cloneRun(id: $id, parameters: $parameters) { id } }
`);

export const RERUN_RUN = graphql(`
  mutation RerunRun($id: ID!, $from: RerunFrom!, $nodes: [String!]) { rerunRun(id: $id, from: $from, nodes: $nodes) { id } }
`);
