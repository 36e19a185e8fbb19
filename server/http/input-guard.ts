// Bad input refused at the GraphQL edge, before validation or any resolver: a NUL character in any string (a
// String or ID argument, a string or key anywhere inside a JSON value or an input object) and JSON nested deeper
// than MAX_JSON_DEPTH, in the document's literals and in the variables alike. One envelop plugin, so HTTP, SSE
// and graphql-ws (which runs through the same envelop) answer the same typed BAD_USER_INPUT naming the argument.
import type { Plugin } from '@envelop/core';
import { type DocumentNode, type ExecutionArgs, Kind, type ValueNode, visit } from 'graphql';
import { toGraphQLError } from '../../schema/errors';
import { type AtelierError, badInput } from '../errors';
import { describeInputProblem, type InputProblem, inputProblem, MAX_JSON_DEPTH } from '../errors/input-limits';

const refusal = (what: string, problem: InputProblem): AtelierError =>
  badInput(describeInputProblem(what, problem), [{ path: problem.path, message: describeInputProblem(what, problem) }]);

/** The first NUL or too-deep nesting inside a literal, walked without recursion. */
function literalProblem(node: ValueNode, root: string): InputProblem | null {
  const stack: [ValueNode, string, number][] = [[node, root, 0]];
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (v.kind === Kind.STRING) {
      if (v.value.includes('\0')) return { path, kind: 'nul' };
    } else if (v.kind === Kind.LIST || v.kind === Kind.OBJECT) {
      if (depth >= MAX_JSON_DEPTH) return { path, kind: 'depth' };
      if (v.kind === Kind.LIST) v.values.forEach((item, i) => void stack.push([item, `${path}.${i}`, depth + 1]));
      else for (const field of v.fields) stack.push([field.value, `${path}.${field.name.value}`, depth + 1]);
    }
  }
  return null;
}

/**
 * Per document, its refusal: yoga hands the same parsed document for the same text (its parser cache), and a document
 * never changes, so its literals are walked once rather than on every request and subscription that sends it.
 */
const refusalOf = new WeakMap<DocumentNode, AtelierError | null>();

function cachedDocumentRefusal(document: DocumentNode): AtelierError | null {
  let refusal = refusalOf.get(document);
  if (refusal === undefined) refusalOf.set(document, (refusal = documentRefusal(document)));
  return refusal;
}

/** The document's literals: every argument's value and every variable's default. */
function documentRefusal(document: DocumentNode): AtelierError | null {
  let found: AtelierError | null = null;
  const check = (what: string, root: string, value: ValueNode | undefined) => {
    const problem = value && literalProblem(value, root);
    if (problem && !found) found = refusal(what, problem);
  };
  visit(document, {
    Argument: (node) => check(`Argument "${node.name.value}"`, node.name.value, node.value),
    VariableDefinition: (node) => check(`The default of $${node.variable.name.value}`, `$${node.variable.name.value}`, node.defaultValue),
  });
  return found;
}

function variablesRefusal(variables: ExecutionArgs['variableValues']): AtelierError | null {
  for (const [name, value] of Object.entries(variables ?? {})) {
    const problem = inputProblem(value, `$${name}`);
    if (problem) return refusal(`Variable $${name}`, problem);
  }
  return null;
}

export function useInputGuard(): Plugin {
  return {
    onValidate({ params, setResult }) {
      const refused = cachedDocumentRefusal(params.documentAST);
      if (refused) setResult([toGraphQLError(refused)]);
    },
    onExecute({ args, setResultAndStopExecution }) {
      const refused = variablesRefusal(args.variableValues);
      if (refused) setResultAndStopExecution({ errors: [toGraphQLError(refused)] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = variablesRefusal(args.variableValues);
      if (refused) setResultAndStopExecution({ errors: [toGraphQLError(refused)] });
    },
  };
}
