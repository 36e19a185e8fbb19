// Module references: `namespace/name` optionally followed by `@tag` or `@version` (the selector, `latest` when absent).
export interface ModuleRef {
  namespace: string;
  name: string;
  selector: string;
}

export function parseModuleRef(ref: string): ModuleRef {
  const [path, selector = 'latest'] = ref.split('@') as [string, string | undefined];
  const [namespace, name] = path.split('/') as [string, string];
  return { namespace, name, selector };
}
