// The search filter language (README "Searching runs"): comparisons over metrics, params, tags and a run's own
// fields, joined by `and`/`or` with parentheses. Parsed with chevrotain (a maintained parser toolkit whose errors
// carry the offending token's column and the tokens it expected), into a small tree that search.ts compiles to SQL.
import { createToken, EmbeddedActionsParser, type IToken, Lexer, type TokenType } from 'chevrotain';
import { badInput } from '../errors';

export type Literal = { kind: 'number'; value: number } | { kind: 'string'; value: string };
export type MetricAggregate = 'last' | 'min' | 'max';
export const attributes = ['status', 'trigger', 'workflow', 'experiment', 'name', 'domain', 'created', 'started', 'finished'] as const;
export type Attribute = (typeof attributes)[number];
export type Field =
  | { kind: 'metric'; name: string; aggregate: MetricAggregate }
  | { kind: 'param'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'attribute'; name: Attribute };
export type ComparisonOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type Condition =
  | { kind: 'compare'; field: Field; op: ComparisonOp; value: Literal; column: number }
  | { kind: 'like'; field: Field; pattern: string; caseInsensitive: boolean; negated: boolean; column: number }
  | { kind: 'in'; field: Field; values: Literal[]; negated: boolean; column: number }
  | { kind: 'and' | 'or'; left: Condition; right: Condition };
export interface OrderKey {
  field: Field;
  descending: boolean;
}

const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_\-/:]*/ });
const keyword = (name: string) => createToken({ name, pattern: new RegExp(name.toLowerCase(), 'i'), longer_alt: Identifier });
const And = keyword('AND');
const Or = keyword('OR');
const Not = keyword('NOT');
const In = keyword('IN');
const Like = keyword('LIKE');
const ILike = keyword('ILIKE');
const Asc = keyword('ASC');
const Desc = keyword('DESC');
const QuotedName = createToken({ name: 'QuotedName', pattern: /`[^`]+`/, label: 'a `quoted name`' });
const StringLiteral = createToken({ name: 'StringLiteral', pattern: /'(?:[^']|'')*'|"(?:[^"]|"")*"/, label: "a 'string'" });
const NumberLiteral = createToken({ name: 'NumberLiteral', pattern: /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/, label: 'a number' });
const Op = createToken({ name: 'Op', pattern: /<=|>=|!=|<>|==|=|<|>/, label: 'a comparison (= != < <= > >=)' });
const Dot = createToken({ name: 'Dot', pattern: /\./, label: "'.'" });
const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
const tokens: TokenType[] = [
  WhiteSpace,
  And,
  Or,
  Not,
  ILike,
  In,
  Like,
  Asc,
  Desc,
  Identifier,
  QuotedName,
  StringLiteral,
  NumberLiteral,
  Op,
  Dot,
  Comma,
  LParen,
  RParen,
];
/** Built at the first filter parsed, as the parser is (below): a process that parses none pays nothing. */
let lexer: Lexer | undefined;

type FieldPath = { parts: string[]; column: number };

class FilterParser extends EmbeddedActionsParser {
  constructor() {
    super(tokens, { maxLookahead: 2 });
    this.performSelfAnalysis();
  }

  readonly disjunction = this.RULE('disjunction', (): Condition => {
    let left = this.SUBRULE(this.conjunction);
    this.MANY(() => {
      this.CONSUME(Or);
      const right = this.SUBRULE2(this.conjunction);
      left = { kind: 'or', left, right };
    });
    return left;
  });

  readonly conjunction = this.RULE('conjunction', (): Condition => {
    let left = this.SUBRULE(this.atom);
    this.MANY(() => {
      this.CONSUME(And);
      const right = this.SUBRULE2(this.atom);
      left = { kind: 'and', left, right };
    });
    return left;
  });

  readonly atom = this.RULE(
    'atom',
    (): Condition =>
      this.OR([
        {
          ALT: () => {
            this.CONSUME(LParen);
            const inner = this.SUBRULE(this.disjunction);
            this.CONSUME(RParen);
            return inner;
          },
        },
        { ALT: () => this.SUBRULE(this.comparison) },
      ]),
  );

  readonly comparison = this.RULE('comparison', (): Condition => {
    const path = this.SUBRULE(this.fieldPath);
    return this.OR([
      {
        ALT: () => {
          const op = this.CONSUME(Op).image;
          const value = this.SUBRULE(this.literal);
          return { kind: 'compare', path, op, value } as never;
        },
      },
      {
        ALT: () => {
          const negated = this.OPTION(() => this.CONSUME(Not)) !== undefined;
          return this.OR2([
            {
              ALT: () => {
                const like = this.OR3([{ ALT: () => this.CONSUME(Like) }, { ALT: () => this.CONSUME(ILike) }]);
                const pattern = this.CONSUME(StringLiteral);
                return { kind: 'like', path, caseInsensitive: like.tokenType === ILike, negated, pattern: unquote(pattern.image) } as never;
              },
            },
            {
              ALT: () => {
                this.CONSUME(In);
                this.CONSUME2(LParen);
                const values: Literal[] = [];
                this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => values.push(this.SUBRULE2(this.literal)) });
                this.CONSUME2(RParen);
                return { kind: 'in', path, values, negated } as never;
              },
            },
          ]);
        },
      },
    ]);
  });

  readonly fieldPath = this.RULE('fieldPath', (): FieldPath => {
    const first = this.CONSUME(Identifier);
    const parts = [first.image];
    this.MANY(() => {
      this.CONSUME(Dot);
      const part = this.OR([{ ALT: () => this.CONSUME2(Identifier).image }, { ALT: () => this.CONSUME(QuotedName).image.slice(1, -1) }]);
      parts.push(part);
    });
    return { parts, column: first.startOffset + 1 };
  });

  readonly literal = this.RULE(
    'literal',
    (): Literal =>
      this.OR([
        { ALT: () => ({ kind: 'number', value: Number(this.CONSUME(NumberLiteral).image) }) },
        { ALT: () => ({ kind: 'string', value: unquote(this.CONSUME(StringLiteral).image) }) },
      ]),
  );

  readonly orderKey = this.RULE('orderKey', (): { path: FieldPath; descending: boolean } => {
    const path = this.SUBRULE(this.fieldPath);
    let descending = false;
    this.OPTION(() => {
      descending = this.OR([{ ALT: () => this.CONSUME(Asc) }, { ALT: () => this.CONSUME(Desc) }]).tokenType === Desc;
    });
    return { path, descending };
  });
}

const unquote = (image: string) => image.slice(1, -1).replaceAll(image[0]! + image[0]!, image[0]!);

/**
 * One parser for the process, built at its first use: chevrotain parsers are reusable (`input` resets them) and
 * costly to build (its self-analysis took ~0.3 s of CPU at every start of the CLI and the server, parsing or not).
 */
let built: FilterParser | undefined;
const parser = () => (built ??= new FilterParser());

/** `what` (a filter or an order key) as its tokens, or BAD_USER_INPUT naming the column of the first bad character. */
function lex(text: string, what: string): IToken[] {
  lexer ??= new Lexer(tokens, { positionTracking: 'onlyOffset', ensureOptimizations: false });
  const result = lexer.tokenize(text);
  const error = result.errors[0];
  if (error) {
    const column = error.offset + 1;
    throw badInput(
      `${what} column ${column}: unexpected character '${text[error.offset]}'; expected a name, a number, a 'string', an operator or a parenthesis.`,
      [{ path: `${what}:${column}`, message: 'unexpected character' }],
    );
  }
  return result.tokens;
}

function parseWith<T>(text: string, what: string, rule: () => T): T {
  const p = parser();
  p.input = lex(text, what);
  const value = rule();
  const error = p.errors[0];
  if (error) {
    const token = error.token;
    const atEnd = token.tokenType.name === 'EOF' || Number.isNaN(token.startOffset);
    const column = atEnd ? text.length + 1 : token.startOffset + 1;
    const found = atEnd ? 'the end of the filter' : `'${token.image}'`;
    // the detail says it as the message does: the parser's own text lists token sequences, not what to type
    const expected = `${expectation(error, what)}, found ${found}`;
    throw badInput(`${what} column ${column}: ${expected}.`, [{ path: `${what}:${column}`, message: expected }]);
  }
  return value;
}

/** What the parser wanted, in words, from the token labels chevrotain's message lists. */
function expectation(error: { name: string; message: string }, what: string): string {
  if (error.name === 'NotAllInputParsedException') return what === 'filter' ? 'expected AND, OR or the end of the filter' : 'expected ASC, DESC or the end';
  const arrows = [...error.message.matchAll(/-->\s*(.+?)\s*<--/g)].map((m) => m[1]!);
  if (error.name === 'MismatchedTokenException' && arrows[0]) return `expected ${arrows[0]}`;
  const alternatives = [...error.message.matchAll(/\d+\. \[(.+?)\]/g)].map((m) => m[1]!.split(', ')[0]!);
  const unique = [
    ...new Set(alternatives.map((a) => (a === 'Identifier' ? 'a name' : ['NOT', 'LIKE', 'ILIKE', 'IN'].includes(a) ? 'LIKE, ILIKE, IN or NOT' : a))),
  ];
  if (unique.length) return `expected ${unique.join(' or ')}`;
  return 'expected a name, then an operator and a value';
}

/** Parses a filter; an empty one is null (every run). */
export function parseFilter(text: string): Condition | null {
  if (!text.trim()) return null;
  const raw = parseWith(text, 'filter', () => parser().disjunction());
  return resolve(raw as never);
}

/** Parses one `orderBy` key: a field, then ASC (default) or DESC. */
export function parseOrderKey(text: string, index: number): OrderKey {
  const { path, descending } = parseWith(text, `orderBy.${index}`, () => parser().orderKey());
  return { field: fieldOf(path, `orderBy.${index}`), descending };
}

type Raw =
  | { kind: 'compare'; path: FieldPath; op: string; value: Literal }
  | { kind: 'like'; path: FieldPath; pattern: string; caseInsensitive: boolean; negated: boolean }
  | { kind: 'in'; path: FieldPath; values: Literal[]; negated: boolean }
  | { kind: 'and' | 'or'; left: Raw; right: Raw };

/** Turns parsed names into fields and checks each comparison's types, naming the column of a bad one. */
function resolve(raw: Raw): Condition {
  if ('left' in raw) return { kind: raw.kind, left: resolve(raw.left), right: resolve(raw.right) };
  const column = raw.path.column;
  const field = fieldOf(raw.path, 'filter');
  const fail = (message: string) => {
    throw badInput(`filter column ${column}: ${message}`, [{ path: `filter:${column}`, message }]);
  };
  const label = describe(field);
  const numeric = field.kind === 'metric';
  const values = raw.kind === 'compare' ? [raw.value] : raw.kind === 'in' ? raw.values : [];
  if (numeric && raw.kind === 'like') fail(`${label} is a number; LIKE compares text (use =, <, > …).`);
  if (numeric && values.some((v) => v.kind !== 'number')) fail(`${label} is a number; compare it with a number, e.g. ${label} > 0.9.`);
  if (field.kind === 'tag' && values.some((v) => v.kind !== 'string')) fail(`tags are text; quote the value, e.g. ${label} = '1'.`);
  if (field.kind === 'attribute' && raw.kind !== 'like' && values.some((v) => v.kind !== 'string'))
    fail(`${label} is text or a time; quote the value, e.g. ${label} = '…'.`);
  if (field.kind === 'attribute' && ['created', 'started', 'finished'].includes(field.name)) {
    if (raw.kind === 'like') fail(`${label} is a time; compare it with <, <=, >, >= and an ISO time, e.g. ${label} > '2026-01-01'.`);
    for (const v of values)
      if (Number.isNaN(Date.parse(String(v.value)))) fail(`'${v.value}' is not an ISO time (e.g. '2026-01-01' or '2026-01-01T12:00:00Z').`);
  }
  if (raw.kind === 'compare') {
    const op = (raw.op === '==' ? '=' : raw.op === '<>' ? '!=' : raw.op) as ComparisonOp;
    return { kind: 'compare', field, op, value: raw.value, column };
  }
  if (raw.kind === 'like') return { kind: 'like', field, pattern: raw.pattern, caseInsensitive: raw.caseInsensitive, negated: raw.negated, column };
  return { kind: 'in', field, values: raw.values, negated: raw.negated, column };
}

const aggregates: MetricAggregate[] = ['last', 'min', 'max'];

function fieldOf(path: FieldPath, what: string): Field {
  const [head, ...rest] = path.parts;
  const fail = (message: string): never => {
    throw badInput(`${what} column ${path.column}: ${message}`, [{ path: `${what}:${path.column}`, message }]);
  };
  const prefix = head!.toLowerCase();
  if (prefix === 'metrics' || prefix === 'metric') {
    if (rest.length === 1) return { kind: 'metric', name: rest[0]!, aggregate: 'last' };
    if (rest.length === 2 && aggregates.includes(rest[1] as MetricAggregate)) return { kind: 'metric', name: rest[0]!, aggregate: rest[1] as MetricAggregate };
    return fail(`expected metrics.NAME or metrics.NAME.last|min|max (quote a name with dots: metrics.\`val.loss\`).`);
  }
  if (prefix === 'params' || prefix === 'param' || prefix === 'tags' || prefix === 'tag') {
    if (rest.length !== 1) return fail(`expected ${prefix}.NAME (quote a name with dots: ${prefix}.\`a.b\`).`);
    return { kind: prefix.startsWith('param') ? 'param' : 'tag', name: rest[0]! };
  }
  if (rest.length === 0 && attributes.includes(prefix as Attribute)) return { kind: 'attribute', name: prefix as Attribute };
  return fail(`unknown field '${path.parts.join('.')}'; expected metrics.NAME, params.NAME, tags.NAME or one of ${attributes.join(', ')}.`);
}

const describe = (f: Field) => (f.kind === 'metric' ? `metrics.${f.name}.${f.aggregate}` : f.kind === 'attribute' ? f.name : `${f.kind}s.${f.name}`);
