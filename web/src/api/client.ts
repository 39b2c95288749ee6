// A thin, typed wrapper over fetch: the types come from schema.d.ts, which
// `npm run gen` generates from ../schemas/openapi.json.
import createClient from 'openapi-fetch';
import type { paths, components } from './schema';

export type Schemas = components['schemas'];
export type Me = Schemas['Me'];
export type Queue = Schemas['QueueView'];
export type AgentConversation = Schemas['AgentConversation'];
export type CustomerConversation = Schemas['CustomerConversation'];
export type Message = Schemas['Message'];
export type Note = Schemas['Note'];
export type Canned = Schemas['CannedResponse'];
export type Member = Schemas['Member'];
export type Problem = Schemas['Problem'];

export class ApiError extends Error {
  constructor(public status: number, public problem?: Partial<Problem>) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
  }
}

export type Api = ReturnType<typeof makeApi>;

/** A client whose every request carries `Bearer <token()>` when there is a token. */
export function makeApi(token: () => string | null, onUnauthorized?: () => void) {
  const client = createClient<paths>({ baseUrl: location.origin });
  client.use({
    onRequest({ request }) {
      const t = token();
      if (t) request.headers.set('Authorization', `Bearer ${t}`);
      const m = request.method;
      // Every command carries an Idempotency-Key, except those the contract exempts.
      const exempt = /\/v1\/(signup|login|login\/two-factor|password-reset|password-reset\/request|email-confirmation|queues\/[^/]+\/join|invitations\/[^/]+\/accept)$/.test(new URL(request.url).pathname);
      if ((m === 'POST' || m === 'PUT' || m === 'DELETE') && !exempt && !request.headers.has('Idempotency-Key')) {
        request.headers.set('Idempotency-Key', crypto.randomUUID());
      }
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      return response;
    },
  });
  return client;
}

/** Turns an openapi-fetch answer into its data, or throws ApiError. */
export async function ok<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const r = await p;
  if (!r.response.ok) throw new ApiError(r.response.status, (r.error ?? undefined) as Partial<Problem> | undefined);
  return r.data as T;
}

/** The items the console asks for in one page of a paged list (the server's most is 1,000). */
export const PAGE_LIMIT = 100;

/** Every page of a paged list (cursor = last item's `id`, or `seq` for messages): `fetchPage`
 * asks for `limit` items after `after`; a shorter page is the last. */
export async function allPages<T>(fetchPage: (after: string | undefined, limit: number) => Promise<T[]>, cursor: (item: T) => string): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await fetchPage(after, PAGE_LIMIT);
    if (!page || page.length === 0) break;
    out.push(...page);
    after = cursor(page[page.length - 1]);
    if (page.length < PAGE_LIMIT) break;
  }
  return out;
}

/** Saves a conversation's transcript (`format=txt`) as a file, read with `token` (an agent's or
 * its customer's: the server leaves notes out for a customer). */
export async function downloadTranscript(conversation: string, token: string): Promise<void> {
  const r = await fetch(`/v1/conversations/${encodeURIComponent(conversation)}/transcript?format=txt`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => undefined));
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `conversation-${conversation}.txt`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
