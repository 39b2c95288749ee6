// How the console shows an error: its own module, so that every page imports it without
// importing the app (which imports the pages).
import { ApiError } from '../api/client';
import { t } from '../i18n';

/** An error as one line for the person: the problem's detail from the server, or the message. */
export function errText(e: unknown): string {
  return t('error', { detail: e instanceof ApiError ? e.message : String((e as Error)?.message ?? e) });
}
