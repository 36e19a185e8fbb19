// A button for an action the API may refuse: the object's `viewerCan` answer (the very check the mutation runs)
// decides before the click. Allowed: the button. Refused: the button disabled, with the reason as its tooltip and
// as visible text beside it, so nobody clicks to learn it fails.
import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useId } from 'preact/hooks';

export interface Permission {
  allowed: boolean;
  reason: string | null;
}

type ButtonProps = Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'children'>;

/** `permission` undefined (not loaded yet): the button, disabled, without a reason. */
export function PermittedButton({ permission, children, ...button }: ButtonProps & { permission: Permission | undefined; children: ComponentChildren }) {
  const id = useId();
  if (permission?.allowed) {
    return (
      <button type="button" {...button}>
        {children}
      </button>
    );
  }
  const reason = permission?.reason ?? null;
  return (
    <span class="denied" title={reason ?? undefined} data-denied="true">
      <button type="button" {...button} onClick={undefined} disabled aria-describedby={reason ? id : undefined}>
        {children}
      </button>
      {reason && (
        <span id={id} class="denied-reason">
          {reason}
        </span>
      )}
    </span>
  );
}

/** The reason alone, for a form whose submit button is refused (the fields stay readable). */
export function DeniedReason({ permission, id }: { permission: Permission | undefined; id?: string }) {
  if (!permission || permission.allowed || !permission.reason) return null;
  return (
    <p id={id} class="denied-reason" data-denied="true">
      {permission.reason}
    </p>
  );
}
