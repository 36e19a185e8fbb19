// A labelled drop-down, as the filter bars use it: an optional "any" choice first, then the options.
export interface Choice {
  value: string;
  label: string;
}

interface SelectFieldProps {
  label: string;
  value: string;
  /** A plain string is both the value and its label. */
  options: readonly (string | Choice)[];
  /** The label of the empty value, which means "no filter". */
  any?: string;
  onChange(value: string): void;
}

export function SelectField({ label, value, options, any, onChange }: SelectFieldProps) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {any !== undefined && <option value="">{any}</option>}
        {options.map((o) => {
          const { value, label } = typeof o === 'string' ? { value: o, label: o } : o;
          return (
            <option key={value} value={value}>
              {label}
            </option>
          );
        })}
      </select>
    </label>
  );
}
