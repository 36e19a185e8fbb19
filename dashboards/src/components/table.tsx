// The dashboards' tables: one shell (scrolling wrapper, column headers, body) and a data table drawn from column
// definitions, so every page's table has the same markup: `th scope="col"` headers, row headers, clickable rows.
import type { ComponentChildren, HTMLAttributes } from 'preact';
import { navigate } from '../router';

/** A column header: its text, and whether only screen readers hear it (an actions column has no visible title). */
export interface Header {
  header: ComponentChildren;
  hideHeader?: boolean;
  headerClass?: string;
}

export interface Column<T> extends Header {
  cell(row: T, index: number): ComponentChildren;
  /** The cell that names its row: drawn as `th scope="row"`, which screen readers announce with each cell. */
  rowHeader?: boolean;
  class?: string;
  /** Attributes of the cell: a `title`, `data-*` names. */
  cellProps?(row: T): Attributes<HTMLTableCellElement>;
}

type Attributes<E extends EventTarget> = HTMLAttributes<E> & { [data: `data-${string}`]: string | number | boolean | undefined };
export type RowAttributes = Attributes<HTMLTableRowElement>;

interface ShellProps {
  columns: readonly Header[];
  /** The table's accessible name. */
  label?: string;
  class?: string;
  describedBy?: string;
  caption?: ComponentChildren;
  /** Inside a card the table has no frame of its own; either way it scrolls sideways in its own box. */
  wrap?: boolean;
  /** Below the table, inside its frame (a count, a hint). */
  footer?: ComponentChildren;
}

/** The table's frame and headers; the rows are its children (for rows that are components of their own). */
export function Table({ columns, label, class: className, describedBy, caption, wrap = true, footer, children }: ShellProps & { children: ComponentChildren }) {
  const table = (
    <table class={className} aria-label={label} aria-describedby={describedBy}>
      {caption}
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th scope="col" key={i} class={c.headerClass}>
              {c.hideHeader ? <span class="visually-hidden">{c.header}</span> : c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
  // without the frame still in a box of its own that scrolls sideways, so a wide table never widens the page
  if (!wrap) return <div class="table-scroll">{table}</div>;
  return (
    <div class="table-wrap">
      {table}
      {footer}
    </div>
  );
}

// The rows alone decide what a row is; the rest is checked against them.
interface DataTableProps<T> extends Omit<ShellProps, 'columns'> {
  columns: readonly Column<NoInfer<T>>[];
  rows: readonly T[];
  rowKey(row: NoInfer<T>, index: number): string | number;
  /** Attributes of a row: its class, `data-*` names the tests and styles use. */
  rowProps?(row: NoInfer<T>): RowAttributes;
  /** A row that leads to a page: a click anywhere in it (but on a link of its own) follows this address. */
  rowHref?(row: NoInfer<T>): string;
  /** Shown instead of the table while there are no rows. */
  empty?: ComponentChildren;
}

export function DataTable<T>({ columns, rows, rowKey, rowProps, rowHref, empty, ...shell }: DataTableProps<T>) {
  if (empty !== undefined && rows.length === 0) return <>{empty}</>;
  return (
    <Table columns={columns} {...shell}>
      {rows.map((row, i) => {
        const attributes = rowProps?.(row) ?? {};
        const href = rowHref?.(row);
        return (
          <tr
            key={rowKey(row, i)}
            {...attributes}
            class={href ? ['clickable', attributes.class].filter(Boolean).join(' ') : attributes.class}
            onClick={href ? (e) => !(e.target as HTMLElement).closest('a') && navigate(href) : attributes.onClick}
          >
            {columns.map((c, j) =>
              c.rowHeader ? (
                <th scope="row" key={j} class={c.class} {...c.cellProps?.(row)}>
                  {c.cell(row, i)}
                </th>
              ) : (
                <td key={j} class={c.class} {...c.cellProps?.(row)}>
                  {c.cell(row, i)}
                </td>
              ),
            )}
          </tr>
        );
      })}
    </Table>
  );
}
