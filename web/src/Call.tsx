// Video calls, shared by the console and the widget. The server records `CallStarted` and
// `CallEnded` (POST …/calls, POST …/calls/{call}/end) and relays WebRTC signalling over the
// WebSocket: `{"type":"signal","conversation":ID,"data":{…}}` to the conversation's other
// participants. Media flows peer to peer.
//
// Signalling, every `data` naming its `call`:
//   callee → {kind: "answered"}          the callee has its camera and waits for an offer
//   caller → {kind: "offer", sdp}        the caller's offer, sent on "answered"
//   callee → {kind: "answer", sdp}
//   both   → {kind: "ice", candidate}    trickled; kept until the remote description is set
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CustomerEvent, Socket, StoredEvent } from './api/ws';
import { t } from './i18n';

/**
 * ICE servers: none by default (host candidates are enough on one network, and on loopback).
 * A page may set them: `<html data-ice-servers='[{"urls":"stun:stun.example.com"}]'>`.
 */
export function iceServers(): RTCIceServer[] {
  try {
    const v = JSON.parse(document.documentElement.dataset.iceServers || '[]');
    return Array.isArray(v) ? v : [];
  } catch { return []; }
}

export type CallInfo = { id: string; by: { kind?: string; id?: string; name?: string } };

/** The call in progress (the last `CallStarted` not followed by its `CallEnded`), and whether one has ended. */
export function callState(evs: (StoredEvent | CustomerEvent)[]): { active: CallInfo | null; ended: boolean } {
  let active: CallInfo | null = null;
  let ended = false;
  for (const ev of evs) {
    if (ev.type === 'CallStarted') active = { id: ev.call_id, by: ev.by };
    else if (ev.type === 'CallEnded') {
      if (active?.id === ev.call_id) active = null;
      ended = true;
    }
  }
  return { active, ended };
}

type Role = 'caller' | 'callee';

/**
 * One side of a call. The caller's media starts at once; the callee's only when it answers
 * (`answered`). Unmounting hangs up locally (tracks stopped, connection closed).
 */
export function Call(p: { socket: Socket; conversation: string; call: CallInfo; role: Role; onEnd: () => void; remoteName: string }) {
  const [answered, setAnswered] = useState(p.role === 'caller');
  const [state, setState] = useState<string>('new');
  const [err, setErr] = useState('');
  const localRef = useRef<HTMLVideoElement>(null);
  const remoteRef = useRef<HTMLVideoElement>(null);
  const answerRef = useRef<HTMLButtonElement>(null);

  useEffect(() => { if (!answered) answerRef.current?.focus(); }, []);

  useEffect(() => {
    if (!answered) return;
    const call = p.call.id;
    const send = (data: object) => p.socket.send({ type: 'signal', conversation: p.conversation, data: { call, ...data } });
    const pc = new RTCPeerConnection({ iceServers: iceServers() });
    let stream: MediaStream | null = null;
    let closed = false;
    const pending: RTCIceCandidateInit[] = [];
    const remote = new MediaStream();
    if (remoteRef.current) remoteRef.current.srcObject = remote;
    pc.ontrack = (e) => {
      remote.addTrack(e.track);
      remoteRef.current?.play().catch(() => {});
    };
    pc.onicecandidate = (e) => { if (e.candidate) send({ kind: 'ice', candidate: e.candidate.toJSON() }); };
    pc.onconnectionstatechange = () => setState(pc.connectionState);
    const flush = async () => { for (const c of pending.splice(0)) await pc.addIceCandidate(c).catch(() => {}); };

    // The camera first: the caller's offer and the callee's answer carry its tracks.
    const media = navigator.mediaDevices.getUserMedia({ video: true, audio: true }).then((s) => {
      if (closed) { s.getTracks().forEach((x) => x.stop()); return; }
      stream = s;
      s.getTracks().forEach((track) => pc.addTrack(track, s));
      if (localRef.current) { localRef.current.srcObject = s; localRef.current.play().catch(() => {}); }
    }).catch((e) => setErr(t('callNoMedia', { detail: (e as Error)?.message ?? String(e) })));

    const onSignal = async (d: any) => {
      await media;
      if (closed) return;
      if (d.kind === 'answered' && p.role === 'caller') {
        await pc.setLocalDescription(await pc.createOffer());
        send({ kind: 'offer', sdp: pc.localDescription });
      } else if (d.kind === 'offer' && p.role === 'callee') {
        await pc.setRemoteDescription(d.sdp);
        await flush();
        await pc.setLocalDescription(await pc.createAnswer());
        send({ kind: 'answer', sdp: pc.localDescription });
      } else if (d.kind === 'answer' && p.role === 'caller') {
        await pc.setRemoteDescription(d.sdp);
        await flush();
      } else if (d.kind === 'ice' && d.candidate) {
        if (pc.remoteDescription) await pc.addIceCandidate(d.candidate).catch(() => {});
        else pending.push(d.candidate);
      }
    };
    // Signals are handled one at a time, in the order they came.
    let chain = Promise.resolve();
    const off = p.socket.onFrame((f) => {
      if (f.type !== 'signal' || f.conversation !== p.conversation || f.data?.call !== call) return;
      chain = chain.then(() => onSignal(f.data)).catch((e) => setErr(String((e as Error)?.message ?? e)));
    });
    if (p.role === 'callee') media.then(() => { if (!closed) send({ kind: 'answered' }); });
    return () => {
      closed = true;
      off();
      pc.close();
      stream?.getTracks().forEach((x) => x.stop());
    };
  }, [answered, p.call.id]);

  return (
    <section class="call" aria-label={t('callActive')} data-call={p.call.id} data-connection={state}>
      {!answered ? (
        <div class="call-ring" role="alert">
          <strong>📹 {t('callIncoming')}</strong>{p.remoteName ? ` · ${p.remoteName}` : ''}
          <span class="grow" />
          <button type="button" class="primary" ref={answerRef} onClick={() => setAnswered(true)}>{t('callAnswer')}</button>
          <button type="button" class="danger" onClick={p.onEnd}>{t('callDecline')}</button>
        </div>
      ) : (
        <>
          <div class="videos">
            <video ref={remoteRef} class="remote" autoPlay playsInline aria-label={t('remoteVideo')} />
            <video ref={localRef} class="local" autoPlay playsInline muted aria-label={t('localVideo')} />
          </div>
          <div class="call-bar">
            <span role="status">
              {state === 'connected' ? `● ${t('callConnected')}` : p.role === 'caller' && state === 'new' ? t('callRinging') : t('callConnecting')}
            </span>
            <span class="grow" />
            <button type="button" class="danger" onClick={p.onEnd}>{t('callEnd')}</button>
          </div>
          {err && <p class="error" role="alert">{err}</p>}
        </>
      )}
    </section>
  );
}
