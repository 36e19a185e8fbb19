// A classification label as chips: its level (UNCLASSIFIED flagged) and its categories.
export interface Label {
  level: string;
  categories: readonly string[];
}

export function LabelChips({ label }: { label: Label }) {
  return (
    <span class="chips">
      <span class={`chip level level-${label.level}`} data-level={label.level}>
        {label.level === 'UNCLASSIFIED' ? '⚠ UNCLASSIFIED' : label.level}
      </span>
      {label.categories.map((c) => (
        <span class="chip category" key={c}>
          {c}
        </span>
      ))}
    </span>
  );
}

/** A label as one line of text, as the API writes it: `INTERNAL{PII}`. */
export const formatLabel = (label: Label) => `${label.level}${label.categories.length ? `{${label.categories.join(',')}}` : ''}`;
