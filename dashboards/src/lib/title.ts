// Page titles: "<page> · Atelier", so tabs and history entries say where they lead.
import { useEffect } from 'preact/hooks';

export function useTitle(title: string | null | undefined) {
  useEffect(() => {
    document.title = title ? `${title} · Atelier` : 'Atelier';
  }, [title]);
}
